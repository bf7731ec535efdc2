"""Holdouts: `/api/projects/:project_id/experiment_holdouts/`."""

from rest_framework import mixins

from experiments.api.serializers.holdouts import ExperimentHoldoutSerializer
from experiments.models import ExperimentHoldout
from experiments.services.holdouts import holdout_create, holdout_delete, holdout_update
from experiments_api.routing import ProjectScopedViewSet


class ExperimentHoldoutViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
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

    def perform_create(self, serializer: ExperimentHoldoutSerializer) -> None:
        serializer.instance = holdout_create(project=self.project, user=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer: ExperimentHoldoutSerializer) -> None:
        serializer.instance = holdout_update(
            holdout=serializer.instance, user=self.request.user, changes=serializer.validated_data
        )

    def perform_destroy(self, instance: ExperimentHoldout) -> None:
        holdout_delete(holdout=instance, user=self.request.user)
