"""Celery tasks of the results engine: they take ids, call services and are safe to run twice.

Producers enqueue them by name (`experiments_api.queue.enqueue_on_commit`) and never import this module.
`acks_late` with `reject_on_worker_lost` (settings) means a task whose worker dies is redelivered, and the services
resume from what was saved; other failures are retried with backoff, whose delays stay below the broker's
visibility timeout so a waiting retry is never redelivered beside itself.
"""

import logging

from celery import Task, shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from experiments.models import Experiment
from experiments.results.backfill import timeseries_recalculation_run
from experiments.results.batch import (
    metrics_recalculation_metric_run,
    metrics_recalculation_unprocessed_uuids,
    stuck_metrics_recalculation_ids,
)
from experiments.results.daily import daily_results_compute, stuck_recalculation_ids, timeseries_experiment_ids
from experiments.selectors import running_bandit_ids
from experiments.services.bandits import bandit_reweight

logger = logging.getLogger(__name__)

RETRY_POLICY = {"autoretry_for": (Exception,), "retry_backoff": 30, "retry_backoff_max": 60, "max_retries": 3}
TIME_LIMITS = {"soft_time_limit": settings.CELERY_TASK_SOFT_TIME_LIMIT, "time_limit": settings.CELERY_TASK_TIME_LIMIT}
SWEEP_POLICY = {"acks_late": True, "autoretry_for": (DatabaseError,), "max_retries": 3, "retry_backoff": 30}


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, **TIME_LIMITS, **RETRY_POLICY)
def run_timeseries_recalculation(self: Task, recalculation_id: str) -> None:
    """Run the backfill under a lease. A copy that finds the lease held by a live task (a redelivery, a retry, a
    sweep) runs again once that lease can expire, so a dead run is always taken over."""
    wait_seconds = timeseries_recalculation_run(recalculation_id=recalculation_id)
    if wait_seconds is None:
        return
    if self.request.is_eager:
        # In-process mode cannot wait: the lease's holder is a run in this process, which finishes the work.
        logger.warning(
            "Timeseries recalculation %s is leased to another run; not waiting in-process.", recalculation_id
        )
        return
    self.apply_async(args=(recalculation_id,), countdown=wait_seconds)


@shared_task(acks_late=True, reject_on_worker_lost=True, **TIME_LIMITS, **RETRY_POLICY)
def run_metrics_recalculation(recalculation_id: str) -> None:
    """Fan a batch out: one task per metric still to compute, so workers share the load."""
    for metric_uuid in metrics_recalculation_unprocessed_uuids(recalculation_id=recalculation_id):
        recalculate_experiment_metric.delay(recalculation_id, metric_uuid)


@shared_task(acks_late=True, reject_on_worker_lost=True, **TIME_LIMITS, **RETRY_POLICY)
def recalculate_experiment_metric(recalculation_id: str, metric_uuid: str) -> None:
    """One metric of a batch recalculation."""
    metrics_recalculation_metric_run(recalculation_id=recalculation_id, metric_uuid=metric_uuid)


@shared_task(acks_late=True, reject_on_worker_lost=True, **TIME_LIMITS, **RETRY_POLICY)
def compute_experiment_daily_results(experiment_id: int) -> None:
    daily_results_compute(experiment_id=experiment_id)


@shared_task(**SWEEP_POLICY, **TIME_LIMITS)
def schedule_daily_timeseries_results() -> None:
    """Fan out one task per experiment so workers share the load."""
    for experiment_id in timeseries_experiment_ids():
        compute_experiment_daily_results.delay(experiment_id)


@shared_task(**SWEEP_POLICY, **TIME_LIMITS)
def requeue_stuck_timeseries_recalculations() -> None:
    for recalculation_id in stuck_recalculation_ids():
        run_timeseries_recalculation.delay(str(recalculation_id))


@shared_task(**SWEEP_POLICY, **TIME_LIMITS)
def requeue_stuck_metrics_recalculations() -> None:
    for recalculation_id in stuck_metrics_recalculation_ids():
        run_metrics_recalculation.delay(recalculation_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, **TIME_LIMITS, **RETRY_POLICY)
def reweight_bandit(experiment_id: int) -> None:
    """One bandit's due reweight; a rerun of the same run records nothing (the service checks the log)."""
    experiment = Experiment.objects.filter(pk=experiment_id).first()
    if experiment is not None:
        bandit_reweight(experiment=experiment, now=timezone.now())


@shared_task(**SWEEP_POLICY, **TIME_LIMITS)
def schedule_bandit_reweights() -> None:
    """Fan out one task per running bandit; each decides whether a run is due."""
    for experiment_id in running_bandit_ids():
        reweight_bandit.delay(experiment_id)
