"""Saved (shared) experiment metrics: `/api/projects/:project_id/experiment_saved_metrics/`."""

from rest_framework import mixins

from experiments.api.serializers.saved_metrics import ExperimentSavedMetricSerializer
from experiments.models import ExperimentSavedMetric
from experiments.services.saved_metrics import saved_metric_create, saved_metric_update
from experiments_api.routing import ProjectScopedViewSet


class ExperimentSavedMetricViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ProjectScopedViewSet,
):
    """Saved metrics. DELETE really deletes (links to experiments go with it).

    Errors: 400 on `query` naming the problem ("Invalid metric: ..."), on `metadata` when it is not an object.
    """

    scope_object = "experiment"
    queryset = ExperimentSavedMetric.objects.all()
    serializer_class = ExperimentSavedMetricSerializer

    def safely_get_queryset(self, queryset):
        return queryset.select_related("created_by").order_by("-created_at", "-id")

    def perform_create(self, serializer: ExperimentSavedMetricSerializer) -> None:
        serializer.instance = saved_metric_create(
            project=self.project, user=self.request.user, fields=serializer.validated_data
        )

    def perform_update(self, serializer: ExperimentSavedMetricSerializer) -> None:
        serializer.instance = saved_metric_update(saved_metric=serializer.instance, changes=serializer.validated_data)
