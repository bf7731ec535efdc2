"""Saved (shared) experiment metrics: serializer, services and viewset for /experiment_saved_metrics/.

A saved metric's `query` is one ExperimentMetric (api.md §5.1), validated like inline experiment metrics.
It always has a `uuid`, which experiments put in their metric ordering arrays when they link it.
"""

import uuid

from rest_framework import mixins, serializers

from experiments.metric_validation import validate_experiment_metric
from experiments.models import ExperimentSavedMetric
from experiments_api.exceptions import DomainError
from experiments_api.mixins import ServiceWriteMixin
from experiments_api.models import Project, User
from experiments_api.routing import ProjectScopedViewSet
from experiments_api.serializers import UserBasicSerializer
from flags.serializers import TAG_MAX_LENGTH

METADATA_NOT_OBJECT = "Metadata must be an object."


class ExperimentSavedMetricSerializer(serializers.ModelSerializer):
    query = serializers.JSONField()
    metadata = serializers.JSONField(required=False, allow_null=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=TAG_MAX_LENGTH), required=False)
    created_by = UserBasicSerializer(read_only=True)

    class Meta:
        model = ExperimentSavedMetric
        fields = ["id", "name", "description", "query", "metadata", "tags", "created_by", "created_at", "updated_at"]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]

    def validate_query(self, query: object) -> dict:
        try:
            return validate_experiment_metric(query)
        except DomainError as error:
            raise serializers.ValidationError(error.message, code=error.code) from None

    def validate_metadata(self, metadata: object) -> dict | None:
        if metadata is not None and not isinstance(metadata, dict):
            raise serializers.ValidationError(METADATA_NOT_OBJECT)
        return metadata


def _with_uuid(query: dict, fallback: str | None = None) -> dict:
    """Keep the query's uuid, else the previous one (on update), else a new one."""
    return {**query, "uuid": query.get("uuid") or fallback or str(uuid.uuid4())}


def saved_metric_create(*, project: Project, user: User | None, data: dict) -> ExperimentSavedMetric:
    """Validate `data` and create the saved metric; a query without `uuid` gets one."""
    serializer = ExperimentSavedMetricSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    fields = {**serializer.validated_data, "query": _with_uuid(serializer.validated_data["query"])}
    return ExperimentSavedMetric.objects.create(project=project, created_by=user, **fields)


def saved_metric_update(
    *, saved_metric: ExperimentSavedMetric, data: dict, partial: bool = True
) -> ExperimentSavedMetric:
    """Validate and apply `data`; a new query without `uuid` keeps the previous query's uuid."""
    serializer = ExperimentSavedMetricSerializer(saved_metric, data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    changes = dict(serializer.validated_data)
    if "query" in changes:
        changes["query"] = _with_uuid(changes["query"], fallback=saved_metric.query.get("uuid"))
    for field, value in changes.items():
        setattr(saved_metric, field, value)
    saved_metric.save()
    return saved_metric


class ExperimentSavedMetricViewSet(
    ServiceWriteMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
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

    def create_object(self, data: dict) -> ExperimentSavedMetric:
        return saved_metric_create(project=self.project, user=self.request.user, data=data)

    def update_object(self, instance: ExperimentSavedMetric, data: dict, *, partial: bool) -> ExperimentSavedMetric:
        return saved_metric_update(saved_metric=instance, data=data, partial=partial)
