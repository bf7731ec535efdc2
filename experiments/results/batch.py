"""Batch recalculation of every metric of an experiment: one record, one Celery task per metric.

Each task computes the metric's current result (query_to = now, or the end date) with the results engine, stores it
as an ExperimentMetricResult, and counts itself in the record under a row lock, so progress and errors are exact
even when tasks run concurrently or are redelivered after a worker dies (each metric is one short step: a
redelivered copy simply computes it again and counts it once).
"""

from django.db import transaction

from experiments import messages
from experiments.models import (
    ACTIVE_RECALCULATION_STATUSES,
    Experiment,
    ExperimentMetricsRecalculation,
    RecalculationStatus,
)
from experiments.results.current import current_query_to, experiment_metrics
from experiments.results.daily import current_result_store
from experiments.results.leases import stalled_before
from experiments.results.requests import metrics_recalculation_request


def metrics_recalculation_trigger_if_scheduled(*, experiment: Experiment, trigger: str) -> None:
    """Launching, ending or changing the metrics of an experiment that opted into timeseries starts a batch."""
    if (experiment.scheduling_config or {}).get("timeseries") and experiment.start_date is not None:
        metrics_recalculation_request(experiment=experiment, trigger=trigger)


def _unprocessed(recalculation: ExperimentMetricsRecalculation) -> list[str]:
    return [uuid for uuid in recalculation.metric_uuids if uuid not in recalculation.processed_metric_uuids]


def metrics_recalculation_unprocessed_uuids(*, recalculation_id) -> list[str]:
    """The metrics of an active batch still to compute (none when the batch is unknown or finished)."""
    recalculation = ExperimentMetricsRecalculation.objects.filter(
        pk=recalculation_id, status__in=ACTIVE_RECALCULATION_STATUSES
    ).first()
    return [] if recalculation is None else _unprocessed(recalculation)


def _count(recalculation_id, metric_uuid: str, error: str | None) -> None:
    """Count a metric once; a retry that succeeds after a counted failure moves it from failed to completed."""
    with transaction.atomic():
        recalculation = ExperimentMetricsRecalculation.objects.select_for_update().get(pk=recalculation_id)
        errors = dict(recalculation.metric_errors)
        if metric_uuid in recalculation.processed_metric_uuids:
            if error is not None or metric_uuid not in errors:
                return
            del errors[metric_uuid]
            recalculation.failed_metrics -= 1
        else:
            recalculation.processed_metric_uuids = [*recalculation.processed_metric_uuids, metric_uuid]
        if error is None:
            recalculation.completed_metrics += 1
        else:
            recalculation.failed_metrics += 1
            errors[metric_uuid] = error
        recalculation.metric_errors = errors
        done = recalculation.completed_metrics + recalculation.failed_metrics >= recalculation.total_metrics
        if done:
            recalculation.status = (
                RecalculationStatus.FAILED if recalculation.failed_metrics else RecalculationStatus.COMPLETED
            )
        else:
            recalculation.status = RecalculationStatus.IN_PROGRESS
        recalculation.save()


def metrics_recalculation_metric_run(*, recalculation_id, metric_uuid: str) -> None:
    """Compute and store one metric of a batch. A metric the engine refuses (DomainError) is counted as failed
    with its message. An unexpected error is counted as failed too, so the batch always finishes even when every
    retry fails, then propagates so the task is retried; a retry that succeeds counts the metric as completed."""
    recalculation = (
        ExperimentMetricsRecalculation.objects.select_related("experiment__project", "experiment__feature_flag")
        .filter(pk=recalculation_id)
        .first()
    )
    if recalculation is None or (
        metric_uuid in recalculation.processed_metric_uuids and metric_uuid not in recalculation.metric_errors
    ):
        return
    experiment = recalculation.experiment
    metric = next((m for m in experiment_metrics(experiment) if m["uuid"] == metric_uuid), None)
    if metric is None:
        _count(recalculation_id, metric_uuid, messages.METRIC_REMOVED)
        return
    error, unexpected = current_result_store(
        experiment=experiment, metric=metric, query_to=current_query_to(experiment)
    )
    _count(recalculation_id, metric_uuid, error)
    if unexpected is not None:
        raise unexpected


def stuck_metrics_recalculation_ids() -> list[str]:
    """Batches with no progress for longer than a task may run (their messages were lost, or every retry of a
    worker died): requeued, their unprocessed metrics are computed."""
    return [
        str(pk)
        for pk in ExperimentMetricsRecalculation.objects.filter(
            status__in=ACTIVE_RECALCULATION_STATUSES, updated_at__lt=stalled_before()
        ).values_list("pk", flat=True)
    ]
