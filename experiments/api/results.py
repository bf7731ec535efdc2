"""Timeseries actions of the experiments viewset: request a recalculation, read the daily results."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from experiments import messages
from experiments.api.serializers.results import (
    MetricsRecalculationSerializer,
    RecalculationSerializer,
    TimeseriesResultsSerializer,
)
from experiments.definitions.metric import METRIC_UUID_MAX_LENGTH
from experiments.results.requests import (
    metrics_recalculation_request,
    metrics_recalculation_response,
    recalculation_response,
    timeseries_recalculation_request,
)
from experiments.results.timeseries import timeseries_results_get
from experiments_api.schema import error_response
from experiments_api.serializers import JSONObjectField, JSONStringField

# Only a well-formed UUID reaches the lookup: anything else is an unknown route (404), never a failed UUID cast.
UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def _has_null_character(value: object) -> bool:
    """PostgreSQL cannot store NUL in text or jsonb."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_null_character(key) or _has_null_character(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_null_character(item) for item in value)
    return False


class RecalculateTimeseriesSerializer(serializers.Serializer):
    """PostHog answers these errors without an `attr`, so they are raised as non-field errors. The metric is
    otherwise stored as sent; its uuid is checked because daily results are stored under it."""

    metric = JSONObjectField(required=False, allow_null=True, help_text="Required: the metric, with its `uuid`.")
    fingerprint = JSONStringField(
        required=False, allow_null=True, help_text="Required: the metric's fingerprint (at most 64 characters)."
    )

    def validate(self, attrs: dict) -> dict:
        metric, fingerprint = attrs.get("metric"), attrs.get("fingerprint")
        if not metric:
            raise serializers.ValidationError(messages.METRIC_REQUIRED)
        if not isinstance(metric, dict):
            raise serializers.ValidationError(messages.METRIC_NOT_OBJECT)
        if not fingerprint:
            raise serializers.ValidationError(messages.FINGERPRINT_REQUIRED)
        if not isinstance(fingerprint, str) or len(fingerprint) > 64:
            raise serializers.ValidationError(messages.FINGERPRINT_INVALID)
        metric_uuid = metric.get("uuid")
        if metric_uuid is not None and not (
            isinstance(metric_uuid, str) and len(metric_uuid) <= METRIC_UUID_MAX_LENGTH
        ):
            raise serializers.ValidationError(messages.METRIC_UUID_INVALID)
        if _has_null_character(metric) or _has_null_character(fingerprint):
            raise serializers.ValidationError(messages.NULL_CHARACTERS)
        return attrs


class TimeseriesResultsParamsSerializer(serializers.Serializer):
    """Both parameters are required; a missing or empty one is answered with PostHog's message (no `attr`)."""

    metric_uuid = serializers.CharField(required=False, allow_blank=True, max_length=255)
    fingerprint = serializers.CharField(required=False, allow_blank=True, max_length=64)

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("metric_uuid"):
            raise serializers.ValidationError(messages.METRIC_UUID_PARAM_REQUIRED)
        if not attrs.get("fingerprint"):
            raise serializers.ValidationError(messages.FINGERPRINT_PARAM_REQUIRED)
        return attrs


def _requested(body: dict, created: bool) -> Response:
    """A recalculation request's answer: 201 with a new record, 200 with the one already pending or in progress."""
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


SERVICE_UNAVAILABLE_RESPONSE = error_response("The task queue is unreachable; nothing was written.")


class ExperimentTimeseriesActionsMixin:
    @extend_schema(
        request=RecalculateTimeseriesSerializer,
        responses={
            201: RecalculationSerializer,
            200: OpenApiResponse(RecalculationSerializer, "Already queued"),
            503: SERVICE_UNAVAILABLE_RESPONSE,
        },
    )
    @action(detail=True, methods=["post"])
    def recalculate_timeseries(self, request: Request, *args, **kwargs) -> Response:
        """Queue a recomputation of a metric's daily results from the start date. Idempotent per
        (experiment, fingerprint): 200 with the pending/in-progress request, or 201 with a new one (whose stored
        results are deleted first). 400 when `metric`/`fingerprint` is missing or the experiment is a draft; 503 with
        `Retry-After` when the task queue is unreachable (nothing is written)."""
        params = RecalculateTimeseriesSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        recalculation, created = timeseries_recalculation_request(experiment=self.get_object(), **params.validated_data)
        return _requested(recalculation_response(recalculation), created)

    @extend_schema(
        parameters=[
            OpenApiParameter("metric_uuid", str, required=True, description="The metric's `uuid`."),
            OpenApiParameter("fingerprint", str, required=True, description="The metric's `fingerprint`."),
        ],
        responses={200: TimeseriesResultsSerializer},
    )
    @action(detail=True, methods=["get"])
    def timeseries_results(self, request: Request, *args, **kwargs) -> Response:
        """A metric's cumulative daily results (one entry per experiment day, null where not computed), with the
        overall status pending|failed|completed|partial and any active recalculation."""
        params = TimeseriesResultsParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(timeseries_results_get(experiment=self.get_object(), **params.validated_data))

    @extend_schema(
        request=None,
        responses={
            201: MetricsRecalculationSerializer,
            200: OpenApiResponse(MetricsRecalculationSerializer, "A batch is already pending or in progress"),
            503: SERVICE_UNAVAILABLE_RESPONSE,
        },
    )
    @action(detail=True, methods=["post"], url_path="metrics_recalculation")
    def metrics_recalculation(self, request: Request, *args, **kwargs) -> Response:
        """Recalculate every metric now, one Celery task per metric. 201 with a new pending batch, or 200 with the
        one already pending or in progress. 400 for a draft; 503 with `Retry-After` when the task queue is
        unreachable (nothing is written)."""
        recalculation, created = metrics_recalculation_request(experiment=self.get_object())
        return _requested(metrics_recalculation_response(recalculation), created)

    @extend_schema(responses={200: MetricsRecalculationSerializer})
    @action(detail=True, methods=["get"], url_path="metrics_recalculation/latest")
    def metrics_recalculation_latest(self, request: Request, *args, **kwargs) -> Response:
        """The experiment's most recent batch recalculation with its per-metric progress; 404 if none."""
        recalculation = self.get_object().metrics_recalculations.order_by("-created_at").first()
        if recalculation is None:
            raise exceptions.NotFound()
        return Response(metrics_recalculation_response(recalculation))

    @extend_schema(responses={200: MetricsRecalculationSerializer})
    @action(detail=True, methods=["get"], url_path=rf"metrics_recalculation/(?P<recalculation_id>{UUID_PATTERN})")
    def metrics_recalculation_detail(self, request: Request, *args, recalculation_id: str, **kwargs) -> Response:
        """One batch recalculation of this experiment; 404 if unknown."""
        recalculation = self.get_object().metrics_recalculations.filter(pk=recalculation_id).first()
        if recalculation is None:
            raise exceptions.NotFound()
        return Response(metrics_recalculation_response(recalculation))
