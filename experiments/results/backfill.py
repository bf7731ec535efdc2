"""The worker's side of a timeseries recalculation: every local day's cumulative result from one read of the events.

Idempotent and resumable: the run holds a lease on the record (leases.py), and each day is upserted with the
record's `last_successful_date` and a renewed lease in one transaction, so a run that dies (worker killed, time
limit, database error) is redelivered or retried, takes the expired lease over and continues after the last day
it saved; running twice writes the same rows.
"""

import datetime as dt

from django.db import transaction
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
from experiments.results.leases import Lease, LeaseLost, lease_claim, lease_wait_seconds
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


def _pending_days(recalculation: ExperimentTimeseriesRecalculation, days: list[dt.date]) -> list[dt.date]:
    done = recalculation.last_successful_date
    return [day for day in days if done is None or day > done]


def _metric_uuid(recalculation: ExperimentTimeseriesRecalculation) -> str | None:
    return recalculation.metric.get("uuid") if isinstance(recalculation.metric, dict) else None


def _backfill(recalculation: ExperimentTimeseriesRecalculation, lease: Lease) -> None:
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
            lease.renew(last_successful_date=day)
            metric_result_upsert(
                experiment=experiment,
                metric_uuid=metric_uuid,
                fingerprint=recalculation.fingerprint,
                query_to=day_end(day, tz),
                result=result_by_day[day],
            )
        recalculation.last_successful_date = day


def _record_failure(recalculation: ExperimentTimeseriesRecalculation, lease: Lease, error: str) -> None:
    """The record becomes failed (its lease released); the first day not yet saved gets a failed row carrying the
    error. Nothing is written when another task has taken the record over."""
    experiment = recalculation.experiment
    metric_uuid = _metric_uuid(recalculation)
    with transaction.atomic():
        if not lease.release(status=RecalculationStatus.FAILED, error_message=error):
            return
        if experiment.start_date is None or not metric_uuid:
            return
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


def timeseries_recalculation_run(*, recalculation_id) -> float | None:
    """Compute and store every day of a recalculation under a lease, resuming after `last_successful_date`.

    Returns the seconds to wait before trying again when another task holds a live lease on it (the caller runs
    again then, so an abandoned run is taken over once its lease expires), else None: done, or nothing to do.
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
    if recalculation is None:
        return None
    lease = lease_claim(recalculation.pk)
    if lease is None:
        return lease_wait_seconds(recalculation.pk)
    # A previous owner may have saved more days since the record was read.
    recalculation.refresh_from_db(fields=["last_successful_date"])
    try:
        _backfill(recalculation, lease)
    except LeaseLost:
        return None
    except DomainError as error:
        _record_failure(recalculation, lease, error.message)
        return None
    except Exception as error:
        _record_failure(recalculation, lease, str(error) or type(error).__name__)
        raise
    lease.release(status=RecalculationStatus.COMPLETED, error_message=None)
    return None
