"""HTTP endpoints of feature flags and cohorts under /api/projects/:project_id/."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from experiments_api.mixins import DestroyNotAllowedMixin, ServiceWriteMixin
from experiments_api.routing import ProjectScopedViewSet
from experiments_api.schema import CONFLICT_RESPONSE
from flags.filters import FeatureFlagFilter
from flags.models import Cohort, FeatureFlag
from flags.selectors import feature_flags_for_serializer
from flags.serializers import CohortSerializer, FeatureFlagSerializer
from flags.services import cohort_create, cohort_update, feature_flag_create, feature_flag_update

FLAG_UPDATE_SCHEMA = extend_schema(responses={200: FeatureFlagSerializer, 409: CONFLICT_RESPONSE})


@extend_schema_view(update=FLAG_UPDATE_SCHEMA, partial_update=FLAG_UPDATE_SCHEMA)
class FeatureFlagViewSet(
    ServiceWriteMixin,
    DestroyNotAllowedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    ProjectScopedViewSet,
):
    """Feature flags. The list hides soft-deleted flags; PATCH `{"deleted": true}` deletes, DELETE answers 405.

    Errors: 400 `unique` on `key` for a key a live flag already has, `invalid_key` for a malformed key,
    400 on `filters` for malformed release conditions, variants or payloads, 400 on `deleted` when a running
    experiment uses the flag.
    """

    scope_object = "feature_flag"
    queryset = FeatureFlag.objects.all()
    serializer_class = FeatureFlagSerializer
    filterset_class = FeatureFlagFilter

    def safely_get_queryset(self, queryset):
        if self.action == "list":
            queryset = queryset.filter(deleted=False)
        return feature_flags_for_serializer(queryset).order_by("-created_at", "-id")

    def create_object(self, data: dict) -> FeatureFlag:
        return feature_flag_create(project=self.project, user=self.request.user, data=data)

    def update_object(self, instance: FeatureFlag, data: dict, *, partial: bool) -> FeatureFlag:
        return feature_flag_update(flag=instance, user=self.request.user, data=data, partial=partial)


class CohortViewSet(
    ServiceWriteMixin,
    DestroyNotAllowedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    ProjectScopedViewSet,
):
    """Cohorts. The list hides soft-deleted cohorts; PATCH `{"deleted": true}` deletes, DELETE answers 405."""

    scope_object = "cohort"
    queryset = Cohort.objects.all()
    serializer_class = CohortSerializer

    def safely_get_queryset(self, queryset):
        if self.action == "list":
            queryset = queryset.filter(deleted=False)
        return queryset.select_related("created_by").order_by("-created_at", "-id")

    def create_object(self, data: dict) -> Cohort:
        return cohort_create(project=self.project, user=self.request.user, data=data)

    def update_object(self, instance: Cohort, data: dict, *, partial: bool) -> Cohort:
        return cohort_update(cohort=instance, data=data, partial=partial)
