"""Experiment holdouts: a share of users kept out of every experiment that uses the holdout.

Serializer, services and viewset for /api/projects/:project_id/experiment_holdouts/. A holdout's groups are
copied into `filters.holdout_groups` of the flags of its experiments, so updates and deletes rewrite them.
"""

from django.db import transaction
from django.db.models import QuerySet
from rest_framework import mixins, serializers

from experiments.models import ExperimentHoldout
from experiments_api.mixins import ServiceWriteMixin
from experiments_api.models import Project, User
from experiments_api.routing import ProjectScopedViewSet
from experiments_api.serializers import UserBasicSerializer
from flags.models import FeatureFlag
from flags.services import feature_flags_holdout_groups_set
from flags.validators import are_property_filters, is_percentage

HOLDOUT_FILTERS_NOT_LIST = "Holdout filters must be a non-empty list of groups."
HOLDOUT_GROUP_NOT_OBJECT = "Holdout group at index {index} must be an object."
ROLLOUT_PERCENTAGE_MISSING = "Rollout percentage must be present."
ROLLOUT_PERCENTAGE_OUT_OF_RANGE = "Rollout percentage must be between 0 and 100."
HOLDOUT_GROUP_PROPERTIES_NOT_LIST = (
    "Holdout group at index {index}: properties must be a list of property filters, each an object with a 'key'."
)


def holdout_variant(holdout_id: int) -> str:
    return f"holdout-{holdout_id}"


class ExperimentHoldoutSerializer(serializers.ModelSerializer):
    filters = serializers.JSONField()
    created_by = UserBasicSerializer(read_only=True)

    class Meta:
        model = ExperimentHoldout
        fields = ["id", "name", "description", "filters", "created_by", "created_at", "updated_at"]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]

    def validate_filters(self, groups: object) -> list[dict]:
        """Each group needs a rollout_percentage from 0 to 100; `variant` is assigned by the services."""
        if not isinstance(groups, list) or not groups:
            raise serializers.ValidationError(HOLDOUT_FILTERS_NOT_LIST)
        for index, group in enumerate(groups):
            if not isinstance(group, dict):
                raise serializers.ValidationError(HOLDOUT_GROUP_NOT_OBJECT.format(index=index))
            if group.get("rollout_percentage") is None:
                raise serializers.ValidationError(ROLLOUT_PERCENTAGE_MISSING)
            if not is_percentage(group["rollout_percentage"]):
                raise serializers.ValidationError(ROLLOUT_PERCENTAGE_OUT_OF_RANGE)
            if not are_property_filters(group.get("properties", [])):
                raise serializers.ValidationError(HOLDOUT_GROUP_PROPERTIES_NOT_LIST.format(index=index))
        return groups


def _tagged_groups(groups: list[dict], holdout_id: int) -> list[dict]:
    return [{**group, "variant": holdout_variant(holdout_id)} for group in groups]


def _flags_of_holdout(holdout: ExperimentHoldout) -> QuerySet[FeatureFlag]:
    return FeatureFlag.objects.filter(experiments__holdout=holdout)


@transaction.atomic
def holdout_create(*, project: Project, user: User | None, data: dict) -> ExperimentHoldout:
    """Validate and create a holdout; each group gets `variant: "holdout-<id>"`."""
    serializer = ExperimentHoldoutSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    holdout = ExperimentHoldout.objects.create(project=project, created_by=user, **serializer.validated_data)
    holdout.filters = _tagged_groups(holdout.filters, holdout.id)
    holdout.save(update_fields=["filters"])
    return holdout


@transaction.atomic
def holdout_update(
    *, holdout: ExperimentHoldout, user: User | None, data: dict, partial: bool = True
) -> ExperimentHoldout:
    """Validate and apply `data`; new filters are tagged and written into the flags of the holdout's experiments."""
    serializer = ExperimentHoldoutSerializer(holdout, data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    changes = dict(serializer.validated_data)
    if "filters" in changes:
        changes["filters"] = _tagged_groups(changes["filters"], holdout.id)
    filters_changed = "filters" in changes and changes["filters"] != holdout.filters
    for field, value in changes.items():
        setattr(holdout, field, value)
    holdout.save()
    if filters_changed:
        feature_flags_holdout_groups_set(flags=_flags_of_holdout(holdout), holdout_groups=holdout.filters, user=user)
    return holdout


@transaction.atomic
def holdout_delete(*, holdout: ExperimentHoldout, user: User | None) -> None:
    """Clear the holdout from its experiments' flags, then delete it (the experiments' links become null)."""
    feature_flags_holdout_groups_set(flags=_flags_of_holdout(holdout), holdout_groups=None, user=user)
    holdout.delete()


class ExperimentHoldoutViewSet(
    ServiceWriteMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    ProjectScopedViewSet,
):
    """Holdouts. DELETE really deletes, after clearing `filters.holdout_groups` on the flags that used it.

    Errors: 400 on `filters` when it is not a non-empty list of groups or a group's rollout_percentage is
    missing or outside 0–100.
    """

    scope_object = "experiment"
    queryset = ExperimentHoldout.objects.all()
    serializer_class = ExperimentHoldoutSerializer

    def safely_get_queryset(self, queryset):
        return queryset.select_related("created_by").order_by("-created_at", "-id")

    def create_object(self, data: dict) -> ExperimentHoldout:
        return holdout_create(project=self.project, user=self.request.user, data=data)

    def update_object(self, instance: ExperimentHoldout, data: dict, *, partial: bool) -> ExperimentHoldout:
        return holdout_update(holdout=instance, user=self.request.user, data=data, partial=partial)

    def perform_destroy(self, instance: ExperimentHoldout) -> None:
        holdout_delete(holdout=instance, user=self.request.user)
