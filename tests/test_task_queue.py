"""Tasks enqueued by name on commit (experiments_api/queue.py): in-process under `task_always_eager`, only once the
transaction commits, found by name in a process that never imported a task module, and, when the broker cannot be
reached, a 503 with `Retry-After` that leaves nothing written. tests/test_celery_worker.py runs them in a worker."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery.exceptions import NotRegistered
from django.db import transaction

from experiments.models import (
    ExperimentMetricResult,
    ExperimentMetricsRecalculation,
    ExperimentTimeseriesRecalculation,
    RecalculationStatus,
)
from experiments.results.requests import METRICS_TASK, TIMESERIES_TASK
from experiments_api.celery import app as celery_app
from experiments_api.queue import enqueue_on_commit
from tests.factories import member_of
from tests.helpers import closed_port, unavailable
from tests.test_metric_aggregation import START, events_node, make_experiment, mean

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
TASK_QUEUE_UNAVAILABLE = unavailable("task queue")
PURCHASES = {**mean(events_node("purchase")), "uuid": "purchases"}
FINGERPRINT = "f" * 64


def pending_batch(experiment) -> ExperimentMetricsRecalculation:
    return ExperimentMetricsRecalculation.objects.create(
        project=experiment.project, experiment=experiment, total_metrics=1, metric_uuids=["purchases"]
    )


def test_a_task_enqueued_by_name_runs_in_process_once_the_transaction_commits(django_capture_on_commit_callbacks):
    experiment = make_experiment(metrics=[PURCHASES])
    batch = pending_batch(experiment)

    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        enqueue_on_commit(METRICS_TASK, str(batch.pk))
    batch.refresh_from_db()
    assert (len(callbacks), batch.status) == (1, RecalculationStatus.PENDING)

    callbacks[0]()

    batch.refresh_from_db()
    assert (batch.status, batch.completed_metrics) == (RecalculationStatus.COMPLETED, 1)
    assert list(ExperimentMetricResult.objects.values_list("metric_uuid", flat=True)) == ["purchases"]


def test_an_unknown_task_name_is_refused_before_anything_is_queued(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(NotRegistered):
        enqueue_on_commit("experiments.tasks.no_such_task", "id")
    assert callbacks == []


def test_a_process_that_never_imported_the_task_modules_finds_tasks_by_name():
    """A web process imports no task module; the registry is filled on first use."""
    script = (
        "import django; django.setup(); import sys; "
        "from experiments_api.queue import registered_task; "
        "assert 'experiments.tasks' not in sys.modules; "
        f"print(registered_task({TIMESERIES_TASK!r}).name, registered_task({METRICS_TASK!r}).name)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "experiments_api.settings.test"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (completed.returncode, completed.stdout.split()) == (0, [TIMESERIES_TASK, METRICS_TASK]), completed.stderr


def point_the_broker_at_a_closed_port(monkeypatch) -> None:
    """A broker URL pointing at a local port nothing listens on, with tasks sent to it (not run in-process)."""
    port = closed_port()
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setitem(celery_app.conf, "broker_url", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)


@pytest.fixture
def broker_down(monkeypatch):
    point_the_broker_at_a_closed_port(monkeypatch)


def url(experiment, action: str) -> str:
    return f"/api/projects/{experiment.project_id}/experiments/{experiment.pk}/{action}"


def test_a_timeseries_request_with_the_broker_down_is_a_503_that_writes_nothing(
    broker_down, make_client, django_capture_on_commit_callbacks
):
    experiment = make_experiment(metrics=[PURCHASES])
    client = make_client(member_of(experiment.project))
    kept = ExperimentMetricResult.objects.create(
        experiment=experiment, metric_uuid="purchases", fingerprint=FINGERPRINT, query_from=START, query_to=START
    )

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            url(experiment, "recalculate_timeseries/"), {"metric": PURCHASES, "fingerprint": FINGERPRINT}
        )

    assert (response.status_code, response.json(), response["Retry-After"]) == (503, TASK_QUEUE_UNAVAILABLE, "30")
    assert callbacks == []
    assert not ExperimentTimeseriesRecalculation.objects.exists()
    # The stored results the request would have replaced are still there: the whole request rolled back.
    assert list(ExperimentMetricResult.objects.values_list("pk", flat=True)) == [kept.pk]


def test_a_batch_request_with_the_broker_down_is_a_503_that_writes_nothing(broker_down, make_client):
    experiment = make_experiment(metrics=[PURCHASES])
    client = make_client(member_of(experiment.project))

    response = client.post(url(experiment, "metrics_recalculation/"))

    assert (response.status_code, response.json(), response["Retry-After"]) == (503, TASK_QUEUE_UNAVAILABLE, "30")
    assert not ExperimentMetricsRecalculation.objects.exists()


def test_once_the_broker_is_back_a_request_creates_a_new_recalculation(make_client, monkeypatch):
    experiment = make_experiment(metrics=[PURCHASES])
    client = make_client(member_of(experiment.project))
    with monkeypatch.context() as patch:
        point_the_broker_at_a_closed_port(patch)
        assert client.post(url(experiment, "metrics_recalculation/")).status_code == 503

    healthy = client.post(url(experiment, "metrics_recalculation/"))

    assert (healthy.status_code, healthy.json()["status"]) == (201, "pending")


def test_launching_an_opted_in_experiment_with_the_broker_down_is_a_503_and_leaves_it_a_draft(broker_down, make_client):
    draft = make_experiment(start=None, metrics=[PURCHASES], scheduling_config={"timeseries": True})
    client = make_client(member_of(draft.project))

    response = client.post(url(draft, "launch/"))

    assert (response.status_code, response.json()) == (503, TASK_QUEUE_UNAVAILABLE)
    draft.refresh_from_db()
    assert (draft.start_date, ExperimentMetricsRecalculation.objects.exists()) == (None, False)
