"""The experiments viewset: `/api/projects/:project_id/experiments/` and its actions."""

import datetime as dt

from django.utils import timezone
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from events.selectors import events_carry_feature_flag_properties
from experiments import messages
from experiments.api.lifecycle import ExperimentLifecycleActionsMixin
from experiments.api.params import (
    EligibleFlagsParamsSerializer,
    RequiresFlagImplementationParamsSerializer,
    parse_eligible_flags_page,
)
from experiments.api.results import ExperimentTimeseriesActionsMixin
from experiments.api.serializers.experiments import (
    DuplicateExperimentSerializer,
    ExperimentSerializer,
    ExposureCohortParamsSerializer,
)
from experiments.filters import ExperimentFilter
from experiments.models import Experiment
from experiments.selectors import (
    eligible_feature_flags,
    experiment_list_rows,
    experiments_with_relations,
    velocity_stats,
    with_saved_metric_links,
)
from experiments.services import experiment_create, experiment_duplicate, experiment_update, exposure_cohort_create
from experiments_api.filters import ListFilterBackend
from experiments_api.mixins import DestroyNotAllowedMixin
from experiments_api.routing import ProjectScopedViewSet
from experiments_api.schema import ErrorSerializer
from flags.serializers import CohortSerializer, FeatureFlagSerializer


class VelocityStatsSerializer(serializers.Serializer):
    launched_last_30d = serializers.IntegerField()
    launched_previous_30d = serializers.IntegerField()
    percent_change = serializers.FloatField()
    active_experiments = serializers.IntegerField()
    completed_last_30d = serializers.IntegerField()


class RequiresFlagResultSerializer(serializers.Serializer):
    result = serializers.BooleanField()


class ExposureCohortResultSerializer(serializers.Serializer):
    cohort = CohortSerializer()


class EligibleFlagsPageSerializer(serializers.Serializer):
    results = FeatureFlagSerializer(many=True)
    count = serializers.IntegerField()


class InvalidPageSerializer(serializers.Serializer):
    """PostHog's own body for a malformed `limit`/`offset` on eligible_feature_flags."""

    error = serializers.CharField()


ELIGIBLE_FLAGS_BAD_REQUEST = PolymorphicProxySerializer(
    component_name="EligibleFeatureFlagsError",
    serializers=[ErrorSerializer, InvalidPageSerializer],
    resource_type_field_name=None,
)


REQUIRES_FLAG_LOOKBACK_DAYS = 7


class ExperimentViewSet(
    ExperimentLifecycleActionsMixin,
    ExperimentTimeseriesActionsMixin,
    DestroyNotAllowedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    ProjectScopedViewSet,
):
    """Experiments of a project. DELETE answers 405: soft-delete with PATCH `{"deleted": true}` instead."""

    scope_object = "experiment"
    queryset = Experiment.objects.all()
    serializer_class = ExperimentSerializer
    filter_backends = [ListFilterBackend]
    filterset_class = ExperimentFilter

    def safely_get_queryset(self, queryset):
        body = self.request.data
        restoring = (
            self.action in ("update", "partial_update") and isinstance(body, dict) and body.get("deleted") is False
        )
        if not restoring:
            queryset = queryset.filter(deleted=False)
        if self.action == "list":
            return queryset  # read as rows by paginate_queryset
        return experiments_with_relations(queryset)

    def paginate_queryset(self, queryset):
        """The list reads its page as rows (experiment_list_rows, with_saved_metric_links), which
        ExperimentSerializer's list serializer shapes exactly as the serializer shapes an experiment: building
        model instances and running DRF's fields for them cost most of a page's time."""
        if self.action != "list":
            return super().paginate_queryset(queryset)
        return with_saved_metric_links(super().paginate_queryset(experiment_list_rows(queryset)))

    def perform_create(self, serializer: ExperimentSerializer) -> None:
        serializer.instance = experiment_create(
            project=self.project, user=self.request.user, data=serializer.validated_data
        )

    def perform_update(self, serializer: ExperimentSerializer) -> None:
        writable = {name for name, field in serializer.fields.items() if not field.read_only}
        serializer.instance = experiment_update(
            experiment=serializer.instance,
            user=self.request.user,
            data=serializer.validated_data,
            # Read-only and unknown keys are ignored, as DRF (and PostHog) do, so a fetched object can be PUT back.
            request_data={key: value for key, value in self.request.data.items() if key in writable},
        )

    @extend_schema(request=DuplicateExperimentSerializer, responses={201: ExperimentSerializer})
    @action(detail=True, methods=["post"])
    def duplicate(self, request: Request, *args, **kwargs) -> Response:
        """Copy the experiment as a new draft named "<name> (Copy)". Without `feature_flag_key` the copy
        shares the source's flag. 201 with the copy; 400 when the copy fails the create rules."""
        params = DuplicateExperimentSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        copy = experiment_duplicate(experiment=self.get_object(), user=request.user, **params.validated_data)
        return Response(self._serialize(copy), status=status.HTTP_201_CREATED)

    @extend_schema(request=ExposureCohortParamsSerializer, responses={201: ExposureCohortResultSerializer})
    @action(detail=True, methods=["post"])
    def create_exposure_cohort_for_experiment(self, request: Request, *args, **kwargs) -> Response:
        """Create a dynamic cohort of the users exposed since launch, using `exposure_criteria.exposure_config`
        when set, else the legacy `parameters.custom_exposure_filter`, else `$feature_flag_called`; with
        `{"is_static": true}` a static copy of the persons exposed so far. 400 when the flag is deleted, the
        experiment is a draft, a cohort exists, or the exposure is an action (this server has no actions)."""
        params = ExposureCohortParamsSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        cohort = exposure_cohort_create(experiment=self.get_object(), user=request.user, **params.validated_data)
        return Response(
            {"cohort": CohortSerializer(cohort, context=self.get_serializer_context()).data},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        parameters=[EligibleFlagsParamsSerializer],
        responses={200: EligibleFlagsPageSerializer, 400: ELIGIBLE_FLAGS_BAD_REQUEST},
    )
    @action(detail=False, methods=["get"], required_scopes=["feature_flag:read"])
    def eligible_feature_flags(self, request: Request, *args, **kwargs) -> Response:
        """Flags that can back an experiment: live, ≥ 2 variants, `control` first. `{results, count}`;
        limit defaults to 20 and is capped at 100. Needs `feature_flag:read`."""
        page = parse_eligible_flags_page(request.query_params)
        if page is None:
            return Response({"error": messages.INVALID_LIMIT_OR_OFFSET}, status=status.HTTP_400_BAD_REQUEST)
        limit, offset = page
        params = EligibleFlagsParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        flags = eligible_feature_flags(self.project, **params.validated_data)
        results = FeatureFlagSerializer(
            flags[offset : offset + limit], many=True, context=self.get_serializer_context()
        ).data
        return Response({"results": results, "count": flags.count()})

    @extend_schema(responses={200: VelocityStatsSerializer})
    @action(detail=False, methods=["get"])
    def stats(self, request: Request, *args, **kwargs) -> Response:
        """Experimentation velocity in the project's timezone: launches in the last 30 days vs the 30 before,
        running experiments and completions. Archived and deleted experiments are left out."""
        return Response(velocity_stats(self.project))

    @extend_schema(
        parameters=[RequiresFlagImplementationParamsSerializer], responses={200: RequiresFlagResultSerializer}
    )
    @action(detail=False, methods=["get"])
    def requires_flag_implementation(self, request: Request, *args, **kwargs) -> Response:
        """`{"result": true}` when none of the given events (`events=[{"id": ...}]`) of the last 7 days carries a
        `$feature/…` property, i.e. the application does not yet report the flag on them (a warning)."""
        params = RequiresFlagImplementationParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        since = timezone.now() - dt.timedelta(days=REQUIRES_FLAG_LOOKBACK_DAYS)
        implemented = events_carry_feature_flag_properties(
            project=self.project, event_names=params.event_names(), since=since
        )
        return Response({"result": not implemented})

    def _serialize(self, experiment: Experiment) -> dict:
        return self.get_serializer(self.get_queryset().get(pk=experiment.pk)).data
