"""Lifecycle actions of the experiments viewset (PostHog's newest API), the activity log and the planner."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from experiments.api.serializers.experiments import ExperimentSerializer
from experiments.api.serializers.lifecycle import (
    ActivitySerializer,
    ArchiveSerializer,
    ConclusionSerializer,
    CopyToProjectSerializer,
    MidExperimentPowerParamsSerializer,
    MidExperimentPowerSerializer,
    RunningTimeRequestSerializer,
    ShipVariantSerializer,
)
from experiments.results.power import metric_power
from experiments.services import lifecycle
from experiments.services.planning import running_time_calculate
from experiments_api.permissions import ensure_key_allows_project, ensure_key_has_scope
from experiments_api.schema import CONFLICT_RESPONSE

FLAG_WRITE_SCOPE = "feature_flag:write"


class RunningTimeResponseSerializer(serializers.Serializer):
    baseline_value = serializers.FloatField()
    variance = serializers.FloatField()
    recommended_sample_size = serializers.IntegerField(help_text="Units needed per variant.")
    recommended_running_time_days = serializers.IntegerField(allow_null=True)


def _validated(serializer_class, request: Request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ExperimentLifecycleActionsMixin:
    """Each action: lock the experiment, check its state (400 when not allowed), change it and its flag in one
    transaction, log the activity, and answer the serialized experiment."""

    def _respond(self, experiment) -> Response:
        return Response(self._serialize(experiment))

    @extend_schema(request=None, responses={200: ExperimentSerializer})
    @action(detail=True, methods=["post"])
    def launch(self, request: Request, *args, **kwargs) -> Response:
        """Draft → running: start_date = now and the flag active. 400 when already launched, the flag is
        deleted, or the flag lacks a `control` variant or a second variant."""
        return self._respond(lifecycle.experiment_launch(experiment=self.get_object(), user=request.user))

    @extend_schema(request=ConclusionSerializer, responses={200: ExperimentSerializer})
    @action(detail=True, methods=["post"])
    def end(self, request: Request, *args, **kwargs) -> Response:
        """Running → stopped: end_date = now, with an optional conclusion. The flag is untouched."""
        data = _validated(ConclusionSerializer, request)
        return self._respond(lifecycle.experiment_end(experiment=self.get_object(), user=request.user, **data))

    @extend_schema(request=None, responses={200: ExperimentSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, *args, **kwargs) -> Response:
        """Deactivate the flag of a running experiment (no new exposures). 400 when not running or paused."""
        return self._respond(lifecycle.experiment_pause(experiment=self.get_object(), user=request.user))

    @extend_schema(request=None, responses={200: ExperimentSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, *args, **kwargs) -> Response:
        """Reactivate a paused experiment's flag; users keep their variants. 400 when not paused."""
        return self._respond(lifecycle.experiment_resume(experiment=self.get_object(), user=request.user))

    @extend_schema(request=None, responses={200: ExperimentSerializer})
    @action(detail=True, methods=["post"])
    def reset(self, request: Request, *args, **kwargs) -> Response:
        """Back to draft: clears dates, conclusion and archived; the flag is untouched. 400 for a draft."""
        return self._respond(lifecycle.experiment_reset(experiment=self.get_object(), user=request.user))

    @extend_schema(request=ShipVariantSerializer, responses={200: ExperimentSerializer, 409: CONFLICT_RESPONSE})
    @action(detail=True, methods=["post"])
    def ship_variant(self, request: Request, *args, **kwargs) -> Response:
        """Serve `variant_key` to 100% of the split (and everyone with `release_to_everyone`), ending the
        experiment if running. 400 for a draft or an unknown variant; 409 when the flag changed meanwhile."""
        data = _validated(ShipVariantSerializer, request)
        return self._respond(lifecycle.experiment_ship_variant(experiment=self.get_object(), user=request.user, **data))

    @extend_schema(request=ArchiveSerializer, responses={200: ExperimentSerializer})
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, *args, **kwargs) -> Response:
        """Hide an ended experiment from the default list; `disable_feature_flag` also deactivates its flag
        (and then needs `feature_flag:write`)."""
        data = _validated(ArchiveSerializer, request)
        if data["disable_feature_flag"]:
            ensure_key_has_scope(request, FLAG_WRITE_SCOPE)
        return self._respond(lifecycle.experiment_archive(experiment=self.get_object(), user=request.user, **data))

    @extend_schema(request=None, responses={200: ExperimentSerializer})
    @action(detail=True, methods=["post"])
    def unarchive(self, request: Request, *args, **kwargs) -> Response:
        """Show an archived experiment in the default list again. 400 when not archived."""
        return self._respond(lifecycle.experiment_unarchive(experiment=self.get_object(), user=request.user))

    @extend_schema(request=CopyToProjectSerializer, responses={201: ExperimentSerializer})
    @action(detail=True, methods=["post"])
    def copy_to_project(self, request: Request, *args, **kwargs) -> Response:
        """Copy as a new draft into another project of the same organization (creating or reusing the flag
        there). 400 when the target is unknown, outside the organization, or the user is not a member; 403 when
        the API key is limited to projects that do not include the target."""
        data = _validated(CopyToProjectSerializer, request)
        ensure_key_allows_project(request, data["target_project_id"])
        copied = lifecycle.experiment_copy_to_project(experiment=self.get_object(), user=request.user, **data)
        return Response(ExperimentSerializer(copied, context={"request": request}).data, status=201)

    @extend_schema(responses={200: ActivitySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def activity(self, request: Request, *args, **kwargs) -> Response:
        """The experiment's activity log, newest first (paginated)."""
        entries = self.get_object().activity.select_related("user").order_by("-created_at", "-id")
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(ActivitySerializer(page, many=True).data)

    @extend_schema(request=RunningTimeRequestSerializer, responses={200: RunningTimeResponseSerializer})
    @action(detail=False, methods=["post"], required_scopes=["experiment:read"])
    def calculate_running_time(self, request: Request, *args, **kwargs) -> Response:
        """Sample size per variant for a two-sided test at `alpha` and `power` detecting the relative
        `minimum_detectable_effect`, and the days to reach it at `exposure_rate_per_day`. Pure statistics."""
        return Response(running_time_calculate(**_validated(RunningTimeRequestSerializer, request)))

    @extend_schema(parameters=[MidExperimentPowerParamsSerializer], responses={200: MidExperimentPowerSerializer})
    @action(detail=True, methods=["get"], required_scopes=["experiment:read"])
    def power(self, request: Request, *args, **kwargs) -> Response:
        """Mid-experiment power of a launched experiment's metric: per test variant, the power to detect the
        relative `target_mde` (default 0.1) now, and the units and days (at the last 7 days' exposure rate) still
        needed for 80% power. 400 for a draft, 404 for a metric uuid the experiment does not have."""
        experiment = self.get_object()
        params = MidExperimentPowerParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(metric_power(experiment=experiment, **params.validated_data))
