"""Requesting a timeseries recalculation (api.md §4.9): idempotent per (experiment, fingerprint)."""

from django.db import IntegrityError, transaction

from experiments import messages
from experiments.models import (
    ACTIVE_RECALCULATION_STATUSES,
    Experiment,
    ExperimentMetricResult,
    ExperimentTimeseriesRecalculation,
)
from experiments_api.exceptions import DomainError


def active_recalculation(*, experiment: Experiment, fingerprint: str) -> ExperimentTimeseriesRecalculation | None:
    return ExperimentTimeseriesRecalculation.objects.filter(
        experiment=experiment, fingerprint=fingerprint, status__in=ACTIVE_RECALCULATION_STATUSES
    ).first()


def _enqueue(recalculation_id) -> None:
    # Imported here: the tasks module imports the services, not the other way round.
    from experiments.tasks import run_timeseries_recalculation

    run_timeseries_recalculation.delay(str(recalculation_id))


def timeseries_recalculation_request(
    *, experiment: Experiment, metric: dict, fingerprint: str
) -> tuple[ExperimentTimeseriesRecalculation, bool]:
    """The pending or in-progress recalculation of (experiment, fingerprint) and False, or a new one and True.

    A new request first claims the slot (the partial unique constraint settles concurrent requests), then deletes
    the stored daily results of the metric under this fingerprint; the worker task is enqueued once this commits.
    """
    if experiment.start_date is None:
        raise DomainError(messages.TIMESERIES_NOT_STARTED)
    with transaction.atomic():
        existing = active_recalculation(experiment=experiment, fingerprint=fingerprint)
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                recalculation = ExperimentTimeseriesRecalculation.objects.create(
                    project_id=experiment.project_id, experiment=experiment, metric=metric, fingerprint=fingerprint
                )
        except IntegrityError:
            return active_recalculation(experiment=experiment, fingerprint=fingerprint), False
        if metric.get("uuid"):
            ExperimentMetricResult.objects.filter(
                experiment=experiment, metric_uuid=metric["uuid"], fingerprint=fingerprint
            ).delete()
        transaction.on_commit(lambda: _enqueue(recalculation.pk))
    return recalculation, True


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
