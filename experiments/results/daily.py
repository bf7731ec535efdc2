"""Scheduled work: each running experiment that opted into timeseries gets today's cumulative result of every
metric (api.md §7), and recalculations whose task died (an expired lease) or was lost are found for requeueing."""

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from experiments.definitions.fingerprint import experiment_metric_fingerprint
from experiments.models import Experiment, ExperimentTimeseriesRecalculation, RecalculationStatus
from experiments.results.backfill import metric_result_upsert
from experiments.results.current import current_metric_result, current_query_to, experiment_metrics
from experiments.results.leases import expired_lease
from experiments_api.exceptions import DomainError

RECENT_LAUNCH = dt.timedelta(days=30)


def timeseries_experiment_ids() -> list[int]:
    """Running experiments with `scheduling_config.timeseries: true` launched in the last 30 days."""
    now = timezone.now()
    return list(
        Experiment.objects.alive()
        .filter(
            scheduling_config__timeseries=True,
            start_date__gte=now - RECENT_LAUNCH,
            start_date__lte=now,
            end_date__isnull=True,
        )
        .values_list("pk", flat=True)
    )


def daily_results_compute(*, experiment_id: int) -> None:
    """Upsert the current result of every metric (query_to = now); a metric that cannot be computed gets a failed
    row with the reason, other errors propagate after the remaining metrics are done."""
    experiment = (
        Experiment.objects.select_related("project", "feature_flag", "holdout").filter(pk=experiment_id).first()
    )
    if experiment is None or experiment.start_date is None:
        return
    query_to = current_query_to(experiment)
    unexpected: Exception | None = None
    for metric in experiment_metrics(experiment):
        _error, failure = current_result_store(experiment=experiment, metric=metric, query_to=query_to)
        unexpected = unexpected or failure
    if unexpected is not None:
        raise unexpected


def current_result_store(
    *, experiment: Experiment, metric: dict, query_to: dt.datetime
) -> tuple[str | None, Exception | None]:
    """Compute the metric's result as of `query_to` and upsert it: completed, or failed with the reason.

    Returns (error message, unexpected exception): a metric the engine refuses (DomainError) only has a message;
    an unexpected error is stored as failed too and returned so the caller can re-raise it for a retry.
    """
    unexpected: Exception | None = None
    try:
        result, error = current_metric_result(experiment=experiment, metric=metric), None
    except DomainError as refused:
        result, error = None, refused.message
    except Exception as other:
        result, error, unexpected = None, str(other) or type(other).__name__, other
    metric_result_upsert(
        experiment=experiment,
        metric_uuid=metric["uuid"],
        fingerprint=experiment_metric_fingerprint(experiment, metric),
        query_to=query_to,
        result=result,
        error=error,
    )
    return error, unexpected


def stuck_recalculation_ids() -> list:
    """In progress under an expired lease (its worker died), or pending without a change for
    RECALCULATION_PENDING_REQUEUE_SECONDS (its message may be lost: a Redis restart drops queued and reserved
    messages): requeued, the task takes the record over and resumes after the last saved day.

    A pending record whose message is only waiting in a backlog gets a second message; the lease makes it harmless
    (whichever runs second finds the work leased or done). Touching the pending records it returns spaces those
    extra messages one period apart."""
    now = timezone.now()
    waited = now - dt.timedelta(seconds=settings.RECALCULATION_PENDING_REQUEUE_SECONDS)
    pending = Q(status=RecalculationStatus.PENDING, updated_at__lt=waited)
    with transaction.atomic():
        stuck = ExperimentTimeseriesRecalculation.objects.select_for_update(skip_locked=True).filter(
            expired_lease(now) | pending
        )
        ids = list(stuck.values_list("pk", flat=True))
        ExperimentTimeseriesRecalculation.objects.filter(pending, pk__in=ids).update(updated_at=now)
    return ids
