"""The Celery application; configuration comes from Django settings (CELERY_* names), plus the beat schedule."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "experiments_api.settings.base")

app = Celery("experiments_api")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def sweep_for_abandoned_tasks_every_time(sender: Celery, **kwargs) -> None:
    """With Redis, a task whose worker died (acks_late) goes back on the queue when a sweep finds it unacknowledged
    for longer than the visibility timeout. Kombu sweeps every 10 s but scans only every tenth time; scan each time."""
    sender.conf.broker_transport_options = {"unacked_restore_throttle": 1, **sender.conf.broker_transport_options}


app.conf.beat_schedule = {
    # A worker killed mid-task is redelivered by the broker; this also takes over expired leases within a minute and
    # catches records whose message was lost.
    "requeue-stuck-timeseries-recalculations": {
        "task": "experiments.tasks.requeue_stuck_timeseries_recalculations",
        "schedule": 60,
    },
    "requeue-stuck-metrics-recalculations": {
        "task": "experiments.tasks.requeue_stuck_metrics_recalculations",
        "schedule": 5 * 60,
    },
    # Each running bandit is reweighted at its own launch + burn-in + k·interval; a quarter-hour check is close enough.
    "bandit-reweights": {
        "task": "experiments.tasks.schedule_bandit_reweights",
        "schedule": 15 * 60,
    },
    # PostHog's default hour: each opted-in running experiment gets the day's cumulative result of every metric.
    "daily-timeseries-results": {
        "task": "experiments.tasks.schedule_daily_timeseries_results",
        "schedule": crontab(hour=2, minute=0),
    },
    # Events of merged persons get the survivor's id; the overrides table stays small.
    "calculate-stale-cohorts": {
        "task": "persons.tasks.calculate_stale_cohorts",
        "schedule": 5 * 60,
    },
    "squash-person-overrides": {
        "task": "persons.tasks.squash_person_overrides",
        "schedule": crontab(minute=30),
    },
}
