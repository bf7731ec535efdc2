"""Celery tasks of the results engine: they take ids, call services and are safe to run twice.

`acks_late` with `reject_on_worker_lost` (settings) means a task whose worker dies is redelivered, and the services
resume from what was saved; other failures are retried with backoff.
"""

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from experiments.results.backfill import timeseries_recalculation_run
from experiments.results.batch import (
    metrics_recalculation_metric_run,
    stuck_metrics_recalculations,
)
from experiments.results.daily import daily_results_compute, stuck_recalculation_ids, timeseries_experiment_ids

RETRY_POLICY = {"autoretry_for": (Exception,), "retry_backoff": 30, "retry_backoff_max": 600, "max_retries": 3}
TIME_LIMITS = {"soft_time_limit": settings.CELERY_TASK_SOFT_TIME_LIMIT, "time_limit": settings.CELERY_TASK_TIME_LIMIT}


@shared_task(acks_late=True, reject_on_worker_lost=True, **TIME_LIMITS, **RETRY_POLICY)
def run_timeseries_recalculation(recalculation_id: str) -> None:
    timeseries_recalculation_run(recalculation_id=recalculation_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, **TIME_LIMITS, **RETRY_POLICY)
def compute_experiment_daily_results(experiment_id: int) -> None:
    daily_results_compute(experiment_id=experiment_id)


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3, retry_backoff=30, **TIME_LIMITS)
def schedule_daily_timeseries_results() -> None:
    """Fan out one task per experiment so workers share the load."""
    for experiment_id in timeseries_experiment_ids():
        compute_experiment_daily_results.delay(experiment_id)


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3, retry_backoff=30, **TIME_LIMITS)
def requeue_stuck_timeseries_recalculations() -> None:
    for recalculation_id in stuck_recalculation_ids():
        run_timeseries_recalculation.delay(str(recalculation_id))


@shared_task(acks_late=True, reject_on_worker_lost=True, **TIME_LIMITS, **RETRY_POLICY)
def recalculate_experiment_metric(recalculation_id: str, metric_uuid: str) -> None:
    """One metric of a batch recalculation (the batch is a Celery group of these)."""
    metrics_recalculation_metric_run(recalculation_id=recalculation_id, metric_uuid=metric_uuid)


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3, retry_backoff=30, **TIME_LIMITS)
def requeue_stuck_metrics_recalculations() -> None:
    for recalculation_id, metric_uuids in stuck_metrics_recalculations():
        for metric_uuid in metric_uuids:
            recalculate_experiment_metric.delay(recalculation_id, metric_uuid)
