"""The worker's side of a timeseries recalculation: every local day's cumulative result from one read of the events.

Idempotent and resumable: each day is upserted with the record's `last_successful_date` in one transaction, so a
run that dies (worker killed, time limit, database error) is redelivered or retried and continues after the last
day it saved; running twice writes the same rows.
"""

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from experiments import messages
from experiments.metrics.days import day_end
from experiments.models import (
    Experiment,
    ExperimentMetricResult,
    ExperimentTimeseriesRecalculation,
    MetricResultStatus,
    RecalculationStatus,
)
from experiments.results.current import experiment_days, metric_results_as_of
from experiments_api.exceptions import DomainError


def metric_result_upsert(
    *,
    experiment: Experiment,
    metric_uuid: str,
    fingerprint: str,
    query_to: dt.datetime,
    result: dict | None,
    error: str | None = None,
) -> None:
    """One (experiment, metric, fingerprint, query_to) row, completed with `result` or failed with `error`."""
    now = timezone.now()
    row = ExperimentMetricResult(
        experiment=experiment,
        metric_uuid=metric_uuid,
        fingerprint=fingerprint,
        query_from=experiment.start_date,
        query_to=query_to,
        status=MetricResultStatus.FAILED if error else MetricResultStatus.COMPLETED,
        result=None if error else result,
        completed_at=now,
        error_message=error,
        created_at=now,
        updated_at=now,
    )
    ExperimentMetricResult.objects.bulk_create(
        [row],
        update_conflicts=True,
        unique_fields=["experiment", "metric_uuid", "fingerprint", "query_to"],
        update_fields=["query_from", "status", "result", "completed_at", "error_message", "updated_at"],
    )


def stalled_before() -> dt.datetime:
    """Work not updated since this instant has outlived any task's time limit (plus a margin): it is stalled."""
    return timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) - dt.timedelta(minutes=5)


def _claim(recalculation: ExperimentTimeseriesRecalculation) -> bool:
    """Move the record to in_progress; False if it is done, failed and superseded by a newer request, or in progress
    with a live task (updated within a task's time limit), so a redelivered copy never runs beside it."""
    claimable = Q(status__in=(RecalculationStatus.PENDING, RecalculationStatus.FAILED)) | Q(
        status=RecalculationStatus.IN_PROGRESS, updated_at__lt=stalled_before()
    )
    try:
        with transaction.atomic():
            return bool(
                ExperimentTimeseriesRecalculation.objects.filter(claimable, pk=recalculation.pk).update(
                    status=RecalculationStatus.IN_PROGRESS, error_message=None, updated_at=timezone.now()
                )
            )
    except IntegrityError:
        return False


def _set_status(recalculation: ExperimentTimeseriesRecalculation, status: str, error: str | None = None) -> None:
    ExperimentTimeseriesRecalculation.objects.filter(pk=recalculation.pk).update(
        status=status, error_message=error, updated_at=timezone.now()
    )


def _pending_days(recalculation: ExperimentTimeseriesRecalculation, days: list[dt.date]) -> list[dt.date]:
    done = recalculation.last_successful_date
    return [day for day in days if done is None or day > done]


def _metric_uuid(recalculation: ExperimentTimeseriesRecalculation) -> str | None:
    return recalculation.metric.get("uuid") if isinstance(recalculation.metric, dict) else None


def _backfill(recalculation: ExperimentTimeseriesRecalculation) -> None:
    experiment = recalculation.experiment
    if experiment.start_date is None:
        raise DomainError(messages.TIMESERIES_NOT_STARTED)
    metric_uuid = _metric_uuid(recalculation)
    if not metric_uuid:
        raise DomainError(messages.METRIC_WITHOUT_UUID)
    tz = experiment.project.tzinfo
    days = experiment_days(experiment)
    pending = _pending_days(recalculation, days)
    if not pending:
        return
    # Cumulative results need every event since the start, so all days are computed in the one query.
    results = metric_results_as_of(
        experiment=experiment, metric=recalculation.metric, boundaries=[day_end(day, tz) for day in days]
    )
    result_by_day = dict(zip(days, results, strict=True))
    for day in pending:
        with transaction.atomic():
            metric_result_upsert(
                experiment=experiment,
                metric_uuid=metric_uuid,
                fingerprint=recalculation.fingerprint,
                query_to=day_end(day, tz),
                result=result_by_day[day],
            )
            ExperimentTimeseriesRecalculation.objects.filter(pk=recalculation.pk).update(
                last_successful_date=day, updated_at=timezone.now()
            )
        recalculation.last_successful_date = day


def _record_failure(recalculation: ExperimentTimeseriesRecalculation, error: str) -> None:
    """The record becomes failed; the first day not yet saved gets a failed row carrying the error."""
    experiment = recalculation.experiment
    metric_uuid = _metric_uuid(recalculation)
    if experiment.start_date is not None and metric_uuid:
        pending = _pending_days(recalculation, experiment_days(experiment))
        if pending:
            metric_result_upsert(
                experiment=experiment,
                metric_uuid=metric_uuid,
                fingerprint=recalculation.fingerprint,
                query_to=day_end(pending[0], experiment.project.tzinfo),
                result=None,
                error=error,
            )
    _set_status(recalculation, RecalculationStatus.FAILED, error)


def timeseries_recalculation_run(*, recalculation_id) -> None:
    """Compute and store every day of a recalculation, resuming after `last_successful_date`.

    A metric the engine cannot compute (DomainError) fails the record for good; any other error fails it and is
    re-raised so the task is retried, which resumes where this run stopped.
    """
    recalculation = (
        ExperimentTimeseriesRecalculation.objects.select_related(
            "experiment__project", "experiment__feature_flag", "experiment__holdout"
        )
        .filter(pk=recalculation_id)
        .first()
    )
    if recalculation is None or not _claim(recalculation):
        return
    try:
        _backfill(recalculation)
    except DomainError as error:
        _record_failure(recalculation, error.message)
        return
    except Exception as error:
        _record_failure(recalculation, str(error) or type(error).__name__)
        raise
    _set_status(recalculation, RecalculationStatus.COMPLETED)
