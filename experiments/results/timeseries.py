"""Reading a metric's daily timeseries (api.md §4.13), with PostHog's day assignment and status rules."""

import datetime as dt

from django.utils import timezone

from experiments import messages
from experiments.metrics.days import days_from
from experiments.models import Experiment, ExperimentMetricResult, MetricResultStatus
from experiments_api.exceptions import DomainError

from .correction import corrected_series, result_day
from .requests import active_recalculation


def _without_step_sessions(result: dict) -> dict:
    result = {key: value for key, value in result.items() if key != "step_sessions"}
    if isinstance(result.get("baseline"), dict):
        result["baseline"] = {key: value for key, value in result["baseline"].items() if key != "step_sessions"}
    if isinstance(result.get("variant_results"), list):
        result["variant_results"] = [
            {key: value for key, value in variant.items() if key != "step_sessions"}
            if isinstance(variant, dict)
            else variant
            for variant in result["variant_results"]
        ]
    return result


def _experiment_days(experiment: Experiment) -> list[str]:
    """UTC dates of the stored timestamps through the server's today, as PostHog lists them (api.md §10.10)."""
    first = experiment.start_date.astimezone(dt.UTC).date()
    last = experiment.end_date.astimezone(dt.UTC).date() if experiment.end_date else timezone.now().date()
    return [day.isoformat() for day in days_from(first, last)]


def _overall_status(*, completed: int, failed: int, pending: int, total: int) -> str:
    if completed == 0 and failed == 0 and pending == 0:
        return "pending"
    if completed == 0 and failed > 0:
        return "failed"
    if completed == total:
        return "completed"
    return "partial"


def timeseries_results_get(*, experiment: Experiment, metric_uuid: str, fingerprint: str) -> dict:
    if experiment.start_date is None:
        raise DomainError(messages.EXPERIMENT_NOT_STARTED)
    tz = experiment.project.tzinfo
    days = _experiment_days(experiment)
    rows = list(
        ExperimentMetricResult.objects.filter(
            experiment=experiment, metric_uuid=metric_uuid, fingerprint=fingerprint
        ).order_by("query_to")
    )
    # query_to is exclusive: a row belongs to the local day of the instant just before it; the latest row wins.
    row_by_day = {result_day(row.query_to, tz): row for row in rows}
    timeseries: dict[str, dict | None] = dict.fromkeys(days)
    errors: dict[str, str] = {}
    counts = {MetricResultStatus.COMPLETED: 0, MetricResultStatus.FAILED: 0, MetricResultStatus.PENDING: 0}
    computed_at = None
    for day in days:
        row = row_by_day.get(day)
        if row is None:
            continue
        if row.status == MetricResultStatus.COMPLETED:
            timeseries[day] = _without_step_sessions(row.result or {})
        elif row.status == MetricResultStatus.FAILED and row.error_message:
            errors[day] = row.error_message
        counts[row.status] = counts.get(row.status, 0) + 1
        if row.completed_at and (computed_at is None or row.completed_at > computed_at):
            computed_at = row.completed_at
    recalculation = active_recalculation(experiment=experiment, fingerprint=fingerprint)
    return {
        "experiment_id": experiment.pk,
        "metric_uuid": metric_uuid,
        "status": _overall_status(
            completed=counts[MetricResultStatus.COMPLETED],
            failed=counts[MetricResultStatus.FAILED],
            pending=counts[MetricResultStatus.PENDING],
            total=len(days),
        ),
        "timeseries": corrected_series(experiment, metric_uuid, timeseries),
        "errors": errors or None,
        "computed_at": computed_at.isoformat() if computed_at else None,
        "created_at": (rows[0].created_at if rows else experiment.created_at).isoformat(),
        "updated_at": (rows[-1].updated_at if rows else experiment.updated_at).isoformat(),
        "recalculation_status": recalculation.status if recalculation else None,
        "recalculation_created_at": recalculation.created_at.isoformat() if recalculation else None,
    }
