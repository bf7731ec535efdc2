"""A real Celery worker process consuming from Redis (not eager mode) runs recalculations enqueued by name, and a
recalculation survives its worker: killed whole (SIGKILL), its pool child killed, or its database connection
terminated mid-task, a recalculation completes with every day computed exactly once and the same results as an
uninterrupted run. A killed worker is recovered at the default settings (a 60 s lease, a 90 s visibility timeout)
within two minutes of a new worker starting; the other workers run with a short lease and visibility timeout, so
the takeover that takes about a minute in production takes seconds here."""

import datetime as dt
import json
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
from experiments.models import (
    ExperimentMetricResult,
    ExperimentMetricsRecalculation,
    ExperimentTimeseriesRecalculation,
    RecalculationStatus,
)
from experiments.results.current import metric_results_as_of
from experiments.results.requests import timeseries_recalculation_request
from experiments_api.celery import app as celery_app
from tests.factories import member_of
from tests.helpers import session_database_url
from tests.metric_reference import RawEvent
from tests.test_metric_aggregation import events_node, make_experiment, mean, store
from tests.test_timeseries import FINGERPRINT, METRIC

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
START = dt.datetime(2025, 4, 1, 8, 0, tzinfo=dt.UTC)
DAYS = 10
# A lease expires this many seconds after a worker's last progress (a minute by default).
LEASE_SECONDS = 3
# A dead worker's unacknowledged task goes back to the queue this many seconds after its delivery (longer than a
# lease and than a lease wait, as by default).
VISIBILITY_TIMEOUT = 6
QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE


SHORT_TIMEOUTS = {
    "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
    "RECALCULATION_LEASE_SECONDS": str(LEASE_SECONDS),
}


class Worker:
    """`celery worker` on this test run's queue, with SHORT_TIMEOUTS unless `default_timeouts` (then neither variable
    is set: the settings' defaults apply). The solo pool is one process (a SIGKILL kills the task with it); the
    prefork pool runs the task in a child process."""

    def __init__(self, log: Path, pool: str = "solo", *, default_timeouts: bool = False) -> None:
        environment = {
            **{name: value for name, value in os.environ.items() if name not in SHORT_TIMEOUTS},
            "DJANGO_SETTINGS_MODULE": "experiments_api.settings.base",
            "DATABASE_URL": session_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
            "SECRET_KEY": settings.SECRET_KEY,
            **({} if default_timeouts else SHORT_TIMEOUTS),
        }
        command = [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "experiments_api",
            "worker",
            f"--pool={pool}",
            "--concurrency=1",
            f"--queues={QUEUE}",
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
            f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
        ]
        self.log = log
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT
        )

    def pool_children(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]

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


def delete_queue(client: redis.Redis, queue: str) -> None:
    """Remove this run's queue (its list, priority lists and binding) and its unacknowledged messages, nothing else
    of the shared Redis database."""
    for key in client.scan_iter(match=f"{queue}*"):
        client.delete(key)
    client.delete(f"_kombu.binding.{queue}")
    for tag, payload in client.hgetall("unacked").items():
        _message, _exchange, routing_key = json.loads(payload)
        if routing_key == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """Starts workers on demand; this run's queue is emptied before and after, and every worker is stopped."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    delete_queue(broker, QUEUE)
    celery_app.conf.task_always_eager = False
    workers = []

    def start(pool: str = "solo", *, default_timeouts: bool = False) -> Worker:
        worker = Worker(tmp_path / f"worker-{len(workers)}.log", pool, default_timeouts=default_timeouts)
        workers.append(worker)
        return worker

    yield start
    celery_app.conf.task_always_eager = True
    for worker in workers:
        worker.stop()
    delete_queue(broker, QUEUE)


def wait_for(condition, what: str, workers=(), timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    logs = "\n".join(worker.log.read_text()[-3000:] for worker in workers)
    raise AssertionError(f"Timed out waiting for {what}.\n{logs}")


def ten_day_experiment(**extra):
    experiment = make_experiment(timezone="Europe/Paris", start=START, end=START + dt.timedelta(days=DAYS - 1), **extra)
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
    assert ExperimentTimeseriesRecalculation.objects.values_list("lease_owner", "leased_until").get(
        pk=response.json()["id"]
    ) == (None, None)


def test_a_worker_runs_a_batch_recalculation_enqueued_by_name(start_worker, make_client):
    pageviews = {**mean(events_node("$feature_flag_called")), "uuid": "exposures"}
    experiment = ten_day_experiment(metrics=[METRIC, pageviews])
    worker = start_worker()
    client = make_client(member_of(experiment.project))

    response = client.post(f"/api/projects/{experiment.project_id}/experiments/{experiment.pk}/metrics_recalculation/")

    assert (response.status_code, response.json()["status"], response.json()["total_metrics"]) == (201, "pending", 2)
    batch = wait_for(
        lambda: ExperimentMetricsRecalculation.objects.filter(
            pk=response.json()["id"], status=RecalculationStatus.COMPLETED
        ).first(),
        "the batch to complete",
        [worker],
    )
    assert (batch.completed_metrics, batch.failed_metrics, batch.metric_errors) == (2, 0, {})
    assert sorted(ExperimentMetricResult.objects.values_list("metric_uuid", flat=True)) == ["exposures", "metric-1"]


def worker_waiting_on_a_lock() -> int | None:
    """The backend pid of the session the worker blocks in, if it is waiting on a row lock now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = cursor.fetchone()
    return row[0] if row else None


class InterruptedRecalculation:
    """A recalculation whose worker saved four days and is stuck on the fifth: another session holds an uncommitted
    row for that day. `resolve()` lets go of it once the fault is injected."""

    def __init__(self, start_worker, pool: str = "solo", *, default_timeouts: bool = False) -> None:
        self.experiment = ten_day_experiment()
        self.days = local_days(self.experiment)
        self.tz = self.experiment.project.tzinfo
        self.blocker = psycopg.connect(session_database_url().replace("postgres://", "postgresql://"))
        self.blocker.execute(
            "INSERT INTO experiments_experimentmetricresult (experiment_id, metric_uuid, fingerprint, query_to, "
            "status, created_at, updated_at) VALUES (%s, %s, %s, %s, 'pending', now(), now())",
            [self.experiment.pk, METRIC["uuid"], FINGERPRINT, day_end(self.days[4], self.tz)],
        )
        self.worker = start_worker(pool, default_timeouts=default_timeouts)
        self.recalculation, _ = timeseries_recalculation_request(
            experiment=self.experiment, metric=METRIC, fingerprint=FINGERPRINT
        )
        self.backend_pid = wait_for(
            lambda: (
                recalculation_state(self.recalculation.pk) == (RecalculationStatus.IN_PROGRESS, self.days[3])
                and worker_waiting_on_a_lock()
            ),
            "the worker to save four days and wait on the fifth",
            [self.worker],
        )
        self.saved_before = self.saved()

    def saved(self) -> dict:
        return {row.query_to: row.updated_at for row in self.rows()}

    def rows(self) -> list[ExperimentMetricResult]:
        return list(
            ExperimentMetricResult.objects.filter(experiment=self.experiment, fingerprint=FINGERPRINT).order_by(
                "query_to"
            )
        )

    def resolve(self) -> None:
        self.blocker.rollback()
        self.blocker.close()

    def assert_completed_as_if_uninterrupted(self, workers, timeout: float = 90) -> None:
        wait_for(
            lambda: recalculation_state(self.recalculation.pk) == (RecalculationStatus.COMPLETED, self.days[-1]),
            "the recalculation to be taken over and completed",
            workers,
            timeout=timeout,
        )
        rows = self.rows()
        boundaries = [day_end(day, self.tz) for day in self.days]
        assert [row.query_to for row in rows] == boundaries
        assert all(row.status == "completed" for row in rows)
        assert [row.result for row in rows] == metric_results_as_of(
            experiment=self.experiment, metric=METRIC, boundaries=boundaries
        )
        # The days saved before the fault were not recomputed: the takeover resumed after the last saved day.
        assert {row.query_to: row.updated_at for row in rows[:4]} == self.saved_before


def test_a_killed_worker_loses_nothing_at_the_default_settings(start_worker):
    """About 90 s: the default visibility timeout is what a SIGKILLed worker's task waits for."""
    interrupted = InterruptedRecalculation(start_worker, default_timeouts=True)
    first = interrupted.worker

    first.kill()
    interrupted.resolve()

    assert recalculation_state(interrupted.recalculation.pk) == (RecalculationStatus.IN_PROGRESS, interrupted.days[3])
    assert len(interrupted.saved_before) == 4
    # The broker redelivers the dead worker's task once its visibility timeout (from its delivery) has passed; by
    # then the lease (from the last saved day) has expired, and the new worker takes the recalculation over.
    second = start_worker(default_timeouts=True)
    available_at = time.monotonic()
    interrupted.assert_completed_as_if_uninterrupted([first, second], timeout=150)
    assert time.monotonic() - available_at <= 120


def test_a_killed_pool_child_is_taken_over_by_the_redelivered_task(start_worker):
    interrupted = InterruptedRecalculation(start_worker, pool="prefork")
    (child,) = interrupted.worker.pool_children()

    os.kill(child, signal.SIGKILL)
    interrupted.resolve()

    # The parent requeues the task at once (reject_on_worker_lost); its copy finds the lease live, reschedules
    # itself for when it expires, and then takes over instead of reporting success.
    interrupted.assert_completed_as_if_uninterrupted([interrupted.worker])


def test_a_task_whose_database_connection_is_dropped_is_retried_and_completes(start_worker):
    interrupted = InterruptedRecalculation(start_worker)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [interrupted.backend_pid])

    interrupted.resolve()

    # The failure cannot be recorded on the dead connection: the retry waits for the lease, then takes over.
    interrupted.assert_completed_as_if_uninterrupted([interrupted.worker])
