"""A real Celery worker process consuming from Redis (not eager mode) runs timeseries recalculations, and a worker
killed mid-task (SIGKILL) loses nothing: the unacknowledged task is redelivered to a new worker, which resumes after
the last day saved."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection

from experiments.metrics.days import day_end, days_from, local_day
from experiments.models import ExperimentMetricResult, ExperimentTimeseriesRecalculation, RecalculationStatus
from experiments.results.backfill import stalled_before
from experiments.results.requests import timeseries_recalculation_request
from experiments_api.celery import app as celery_app
from tests.factories import member_of
from tests.metric_reference import RawEvent
from tests.test_metric_aggregation import make_experiment, store
from tests.test_timeseries import FINGERPRINT, METRIC

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
START = dt.datetime(2025, 4, 1, 8, 0, tzinfo=dt.UTC)
DAYS = 10
# A worker's unacknowledged task goes back to the queue once this many seconds passed since its delivery.
VISIBILITY_TIMEOUT = 3


def database_url() -> str:
    """The test database pytest-django created, which the worker must use too."""
    database = connection.settings_dict
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


class Worker:
    """`celery worker --pool=solo`: one process, so a SIGKILL kills the task with it."""

    def __init__(self, log: Path) -> None:
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "experiments_api.settings.base",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "SECRET_KEY": settings.SECRET_KEY,
        }
        command = [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "experiments_api",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
            f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
        ]
        self.log = log
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """Starts workers on demand; the broker queue is emptied first and every worker is stopped at the end."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    celery_app.conf.task_always_eager = False
    workers = []

    def start() -> Worker:
        worker = Worker(tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    yield start
    celery_app.conf.task_always_eager = True
    for worker in workers:
        worker.stop()


def wait_for(condition, what: str, workers=(), timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    logs = "\n".join(worker.log.read_text()[-3000:] for worker in workers)
    raise AssertionError(f"Timed out waiting for {what}.\n{logs}")


def ten_day_experiment():
    experiment = make_experiment(timezone="Europe/Paris", start=START, end=START + dt.timedelta(days=DAYS - 1))
    events = []
    for number in range(200):
        unit, variant = f"unit-{number}", ("control", "test")[number % 2]
        exposed_at = START + dt.timedelta(hours=number)
        flag = {"$feature_flag": "checkout-flow", "$feature_flag_response": variant}
        events.append(RawEvent("$feature_flag_called", unit, exposed_at, flag))
        events.extend(
            RawEvent("purchase", unit, exposed_at + dt.timedelta(hours=5 * purchase + 1), {"amount": number % 9})
            for purchase in range(number % 3)
        )
    store(experiment.project, events)
    return experiment


def local_days(experiment) -> list[dt.date]:
    tz = experiment.project.tzinfo
    return days_from(local_day(experiment.start_date, tz), local_day(experiment.end_date, tz))


def recalculation_state(recalculation_id):
    return ExperimentTimeseriesRecalculation.objects.values_list("status", "last_successful_date").get(
        pk=recalculation_id
    )


def test_a_worker_recalculates_a_ten_day_experiment(start_worker, make_client):
    worker = start_worker()
    experiment = ten_day_experiment()
    client = make_client(member_of(experiment.project))
    url = f"/api/projects/{experiment.project_id}/experiments/{experiment.pk}"

    response = client.post(f"{url}/recalculate_timeseries/", {"metric": METRIC, "fingerprint": FINGERPRINT})

    assert response.status_code == 201
    days = local_days(experiment)
    assert len(days) == DAYS
    wait_for(
        lambda: recalculation_state(response.json()["id"]) == (RecalculationStatus.COMPLETED, days[-1]),
        "the recalculation to complete",
        [worker],
    )
    results = client.get(f"{url}/timeseries_results/", {"metric_uuid": METRIC["uuid"], "fingerprint": FINGERPRINT})
    body = results.json()
    assert (results.status_code, body["status"], body["errors"], body["recalculation_status"]) == (
        200,
        "completed",
        None,
        None,
    )
    assert len(body["timeseries"]) == DAYS
    samples = [day["baseline"]["number_of_samples"] for day in body["timeseries"].values()]
    assert samples == sorted(samples) and samples[-1] == 100


def worker_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_a_killed_worker_loses_nothing(start_worker):
    experiment = ten_day_experiment()
    days = local_days(experiment)
    tz = experiment.project.tzinfo
    # Another session holds an uncommitted row for the fifth day, so the worker stops there, mid-task.
    blocker = psycopg.connect(database_url().replace("postgres://", "postgresql://"))
    blocker.execute(
        "INSERT INTO experiments_experimentmetricresult (experiment_id, metric_uuid, fingerprint, query_to, status, "
        "created_at, updated_at) VALUES (%s, %s, %s, %s, 'pending', now(), now())",
        [experiment.pk, METRIC["uuid"], FINGERPRINT, day_end(days[4], tz)],
    )
    first = start_worker()
    recalculation, _ = timeseries_recalculation_request(experiment=experiment, metric=METRIC, fingerprint=FINGERPRINT)
    wait_for(
        lambda: (
            recalculation_state(recalculation.pk) == (RecalculationStatus.IN_PROGRESS, days[3])
            and worker_waits_on_a_lock()
        ),
        "the worker to save four days and wait on the fifth",
        [first],
    )
    saved_before = {
        row.query_to: row.updated_at
        for row in ExperimentMetricResult.objects.filter(experiment=experiment, fingerprint=FINGERPRINT)
    }

    first.kill()
    blocker.rollback()
    blocker.close()

    assert recalculation_state(recalculation.pk) == (RecalculationStatus.IN_PROGRESS, days[3])
    assert len(saved_before) == 4
    # In production the broker redelivers only after its visibility timeout (an hour), longer than a task may run,
    # so the record then looks stalled and the redelivered task may take it over; here that timeout is seconds.
    ExperimentTimeseriesRecalculation.objects.filter(pk=recalculation.pk).update(
        updated_at=stalled_before() - dt.timedelta(seconds=1)
    )
    second = start_worker()
    wait_for(
        lambda: recalculation_state(recalculation.pk) == (RecalculationStatus.COMPLETED, days[-1]),
        "a new worker to finish the redelivered task",
        [first, second],
    )
    rows = ExperimentMetricResult.objects.filter(experiment=experiment, fingerprint=FINGERPRINT).order_by("query_to")
    assert [row.query_to for row in rows] == [day_end(day, tz) for day in days]
    assert all(row.status == "completed" for row in rows)
    # The days saved before the kill were not recomputed: the new worker resumed after the last saved day.
    assert {row.query_to: row.updated_at for row in rows[:4]} == saved_before
