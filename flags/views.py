"""HTTP endpoints of feature flags and cohorts under /api/projects/:project_id/."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from experiments_api.mixins import DestroyNotAllowedMixin
from experiments_api.routing import ProjectScopedViewSet
from experiments_api.schema import CONFLICT_RESPONSE
from flags.filters import FeatureFlagFilter
from flags.models import Cohort, FeatureFlag
from flags.selectors import feature_flags_for_serializer
from flags.serializers import (
    CohortSerializer,
    CohortWriteSerializer,
    FeatureFlagSerializer,
    StaticCohortPersonSerializer,
    StaticCohortPersonsSerializer,
)
from flags.services import cohort_create, cohort_update, feature_flag_create, feature_flag_update
from persons.api import PersonPagination
from persons.selectors import persons_with_distinct_ids
from persons.serializers import PersonSerializer
from persons.services.cohorts import static_cohort_person_remove, static_cohort_persons_add

# PostHog cuts each member's distinct ids to this many in the cohort's person list.
COHORT_PERSON_DISTINCT_IDS = 10

FLAG_UPDATE_SCHEMA = extend_schema(responses={200: FeatureFlagSerializer, 409: CONFLICT_RESPONSE})


@extend_schema_view(update=FLAG_UPDATE_SCHEMA, partial_update=FLAG_UPDATE_SCHEMA)
class FeatureFlagViewSet(
    DestroyNotAllowedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
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

    def perform_create(self, serializer: FeatureFlagSerializer) -> None:
        serializer.instance = feature_flag_create(
            project=self.project, user=self.request.user, fields=serializer.validated_data
        )

    def perform_update(self, serializer: FeatureFlagSerializer) -> None:
        serializer.instance = feature_flag_update(
            flag=serializer.instance, user=self.request.user, changes=serializer.validated_data
        )


def _cohort_write_schema(status_code: int):
    """Cohort writes take JSON, or a multipart form whose `csv` file holds a static cohort's persons (the other
    fields as form fields, `filters` as JSON text); both answer the cohort."""
    return extend_schema(
        request={"application/json": CohortSerializer, "multipart/form-data": CohortWriteSerializer},
        responses={status_code: CohortSerializer},
    )


@extend_schema_view(
    create=_cohort_write_schema(201), update=_cohort_write_schema(200), partial_update=_cohort_write_schema(200)
)
class CohortViewSet(
    DestroyNotAllowedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    ProjectScopedViewSet,
):
    """Cohorts. The list hides soft-deleted cohorts; PATCH `{"deleted": true}` deletes, DELETE answers 405.

    A static cohort's persons come from `_create_static_person_ids` (uuids) or, in a multipart body, a `csv` file
    (added to its members on update, by a task: `is_calculating` is true until they are). Errors: 400 on `csv` for
    an empty, non-UTF-8, malformed or too large file, one without ids or without an id column, or a CSV for a
    dynamic cohort; 400 on `filters` naming the behavioural leaf and field that is wrong. Nothing is written on an
    error.
    """

    scope_object = "cohort"
    queryset = Cohort.objects.all()
    serializer_class = CohortSerializer

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return CohortWriteSerializer
        return CohortSerializer

    def safely_get_queryset(self, queryset):
        if self.action == "list":
            queryset = queryset.filter(deleted=False)
        return queryset.select_related("created_by").order_by("-created_at", "-id")

    def perform_create(self, serializer: CohortSerializer) -> None:
        serializer.instance = cohort_create(
            project=self.project, user=self.request.user, fields=serializer.validated_data
        )

    def perform_update(self, serializer: CohortSerializer) -> None:
        serializer.instance = cohort_update(cohort=serializer.instance, changes=serializer.validated_data)

    @extend_schema(request=StaticCohortPersonsSerializer, responses={200: None})
    @action(detail=True, methods=["patch"])
    def add_persons_to_static_cohort(self, request: Request, *args, **kwargs) -> Response:
        """Add persons (uuids, at most 1000; unknown ones ignored) to a static cohort. 400 `Can only add users to
        static cohorts`, `No valid users to add to cohort`."""
        cohort = self.get_object()
        body = StaticCohortPersonsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        static_cohort_persons_add(cohort=cohort, person_uuids=body.validated_data["person_ids"])
        return Response({"success": True})

    @extend_schema(request=StaticCohortPersonSerializer, responses={200: None})
    @action(detail=True, methods=["patch"])
    def remove_person_from_static_cohort(self, request: Request, *args, **kwargs) -> Response:
        """Remove one person (uuid) from a static cohort; 404 `Person is not part of the cohort`."""
        cohort = self.get_object()
        body = StaticCohortPersonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        static_cohort_person_remove(cohort=cohort, person_uuid=body.validated_data["person_id"])
        return Response({"success": True})

    @extend_schema(responses=PersonSerializer(many=True))
    @action(detail=True, methods=["get"], required_scopes=["cohort:read", "person:read"])
    def persons(self, request: Request, *args, **kwargs) -> Response:
        """The cohort's members (as of its last calculation for a dynamic cohort), newest first, each with at
        most 10 distinct ids; `{results, next, previous}`."""
        cohort = self.get_object()
        members = persons_with_distinct_ids(project_id=self.project.pk).filter(cohort_memberships__cohort=cohort)
        paginator = PersonPagination()
        page = paginator.paginate_queryset(members, request, view=self)
        context = {**self.get_serializer_context(), "distinct_ids_limit": COHORT_PERSON_DISTINCT_IDS}
        return paginator.get_paginated_response(PersonSerializer(page, many=True, context=context).data)
