"""Requesting a recalculation: one flow shared by a metric's timeseries (api.md §4.9) and the batch of every metric
(lifecycle.md). Idempotent: the pending or in-progress record is returned while there is one (a partial unique
constraint settles concurrent requests); a new record's task is enqueued by name once it commits."""

from collections.abc import Callable
from typing import TypeVar

from django.db import IntegrityError, models, transaction

from experiments import messages
from experiments.models import (
    ACTIVE_RECALCULATION_STATUSES,
    Experiment,
    ExperimentMetricResult,
    ExperimentMetricsRecalculation,
    ExperimentTimeseriesRecalculation,
    RecalculationStatus,
    RecalculationTrigger,
)
from experiments.results.current import experiment_metrics
from experiments_api.exceptions import DomainError
from experiments_api.queue import enqueue_on_commit

TIMESERIES_TASK = "experiments.tasks.run_timeseries_recalculation"
METRICS_TASK = "experiments.tasks.run_metrics_recalculation"

Recalculation = TypeVar("Recalculation", ExperimentTimeseriesRecalculation, ExperimentMetricsRecalculation)


def recalculation_request(
    *,
    experiment: Experiment,
    active: models.QuerySet[Recalculation],
    create: Callable[[], Recalculation],
    task_name: str,
    not_started_message: str,
) -> tuple[Recalculation, bool]:
    """The active record of `active` and False, or the one `create` makes (inside the transaction, so any other
    write it does commits with it) and True. A new pending record's task is enqueued once this commits; when the
    broker cannot be reached, everything rolls back (ServiceUnavailable). A draft has no exposure window yet."""
    if experiment.start_date is None:
        raise DomainError(not_started_message)
    with transaction.atomic():
        existing = active.first()
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                recalculation = create()
        except IntegrityError:
            return active.first(), False
        if recalculation.status == RecalculationStatus.PENDING:
            enqueue_on_commit(task_name, str(recalculation.pk))
    return recalculation, True


def active_recalculation(*, experiment: Experiment, fingerprint: str) -> ExperimentTimeseriesRecalculation | None:
    return _active_timeseries(experiment, fingerprint).first()


def _active_timeseries(experiment: Experiment, fingerprint: str) -> models.QuerySet[ExperimentTimeseriesRecalculation]:
    return ExperimentTimeseriesRecalculation.objects.filter(
        experiment=experiment, fingerprint=fingerprint, status__in=ACTIVE_RECALCULATION_STATUSES
    )


def active_metrics_recalculation(experiment: Experiment) -> ExperimentMetricsRecalculation | None:
    return _active_batches(experiment).first()


def _active_batches(experiment: Experiment) -> models.QuerySet[ExperimentMetricsRecalculation]:
    return ExperimentMetricsRecalculation.objects.filter(
        experiment=experiment, status__in=ACTIVE_RECALCULATION_STATUSES
    )


def timeseries_recalculation_request(
    *, experiment: Experiment, metric: dict, fingerprint: str
) -> tuple[ExperimentTimeseriesRecalculation, bool]:
    """The pending or in-progress recalculation of (experiment, fingerprint) and False, or a new one and True; a new
    one deletes the stored daily results of the metric under this fingerprint in the same transaction."""

    def create() -> ExperimentTimeseriesRecalculation:
        recalculation = ExperimentTimeseriesRecalculation.objects.create(
            project_id=experiment.project_id, experiment=experiment, metric=metric, fingerprint=fingerprint
        )
        if metric.get("uuid"):
            ExperimentMetricResult.objects.filter(
                experiment=experiment, metric_uuid=metric["uuid"], fingerprint=fingerprint
            ).delete()
        return recalculation

    return recalculation_request(
        experiment=experiment,
        active=_active_timeseries(experiment, fingerprint),
        create=create,
        task_name=TIMESERIES_TASK,
        not_started_message=messages.TIMESERIES_NOT_STARTED,
    )


def metrics_recalculation_request(
    *, experiment: Experiment, trigger: str = RecalculationTrigger.MANUAL
) -> tuple[ExperimentMetricsRecalculation, bool]:
    """The active batch and False, or a new one and True: pending, or completed at once when there is no metric."""

    def create() -> ExperimentMetricsRecalculation:
        metric_uuids = [metric["uuid"] for metric in experiment_metrics(experiment)]
        return ExperimentMetricsRecalculation.objects.create(
            project_id=experiment.project_id,
            experiment=experiment,
            trigger=trigger,
            total_metrics=len(metric_uuids),
            metric_uuids=metric_uuids,
            status=RecalculationStatus.PENDING if metric_uuids else RecalculationStatus.COMPLETED,
        )

    return recalculation_request(
        experiment=experiment,
        active=_active_batches(experiment),
        create=create,
        task_name=METRICS_TASK,
        not_started_message=messages.METRICS_RECALCULATION_NOT_STARTED,
    )


def recalculation_response(recalculation: ExperimentTimeseriesRecalculation) -> dict:
    """The §4.9 response body; timestamps in Python's isoformat (`+00:00`), as PostHog hand-builds it."""
    return {
        "id": str(recalculation.pk),
        "experiment_id": recalculation.experiment_id,
        "metric_uuid": recalculation.metric.get("uuid"),
        "fingerprint": recalculation.fingerprint,
        "status": recalculation.status,
        "created_at": recalculation.created_at.isoformat(),
    }


def metrics_recalculation_response(recalculation: ExperimentMetricsRecalculation) -> dict:
    return {
        "id": str(recalculation.pk),
        "experiment_id": recalculation.experiment_id,
        "status": recalculation.status,
        "total_metrics": recalculation.total_metrics,
        "completed_metrics": recalculation.completed_metrics,
        "failed_metrics": recalculation.failed_metrics,
        "metric_errors": recalculation.metric_errors,
        "trigger": recalculation.trigger,
        "created_at": recalculation.created_at.isoformat(),
    }
