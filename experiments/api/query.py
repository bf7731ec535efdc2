"""POST /api/projects/:project_id/query/ for the experiment query kinds, answered synchronously as PostHog does."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from experiments import messages
from experiments.api.serializers.results import QUERY_RESULT
from experiments.api.serializers.typed_json import MetricField
from experiments.models import Experiment
from experiments.results.query import EXPERIMENT_QUERY, QUERY_KINDS, experiment_query_run
from experiments_api.routing import ProjectScopedViewSet


class ExperimentQueryNodeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=QUERY_KINDS)
    experiment_id = serializers.IntegerField()
    metric = MetricField(required=False, help_text="Required for an ExperimentQuery.")

    def validate(self, attrs: dict) -> dict:
        if attrs["kind"] == EXPERIMENT_QUERY and not isinstance(attrs.get("metric"), dict):
            raise serializers.ValidationError({"metric": messages.QUERY_METRIC_REQUIRED})
        return attrs


@extend_schema_serializer(component_name="Query")
class QueryRequestSerializer(serializers.Serializer):
    query = ExperimentQueryNodeSerializer()


class QueryViewSet(ProjectScopedViewSet):
    """Run an experiment query against the project's events.

    `ExperimentQuery` (`experiment_id`, `metric`) returns the metric's current result: per-variant statistics and
    the configured test's inference. `ExperimentExposureQuery` (`experiment_id`) returns cumulative exposures per
    variant and day with a sample ratio mismatch check. 400 for an invalid query, a draft experiment or a metric
    the engine cannot compute; 404 for an experiment outside the project. Needs the `query:read` scope.
    """

    scope_object = "query"
    required_scopes = ["query:read"]
    queryset = Experiment.objects.alive()
    serializer_class = QueryRequestSerializer

    def safely_get_queryset(self, queryset):
        return queryset.select_related("project", "feature_flag", "holdout")

    @extend_schema(operation_id="query_run", responses={200: QUERY_RESULT})
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        query = serializer.validated_data["query"]
        experiment = get_object_or_404(self.get_queryset(), pk=query["experiment_id"])
        return Response(experiment_query_run(experiment=experiment, query=query))
