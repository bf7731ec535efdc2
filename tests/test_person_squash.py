"""The squash job: events of merged persons get the survivor's id and the overrides go, with the same metric
results before, during and after; idempotent (on every database); a run killed mid-transaction loses nothing
(PostgreSQL)."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.utils import timezone

from events.clickhouse.client import clickhouse_client
from events.clickhouse.schema import OVERRIDES_TABLE
from events.clickhouse.store import clickhouse_events_rewrite, squashable_overrides
from events.models import Event
from experiments.metrics import daily_exposures
from persons.models import PersonDistinctId, PersonOverride
from persons.services.squash import person_overrides_squash
from persons.tasks import squash_person_overrides
from tests.event_stores import stored_events
from tests.helpers import session_database_url
from tests.test_metric_aggregation import CASES, assert_close, daily_rows, day_boundaries
from tests.test_person_metrics import identified_experiment

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("count", "ordered funnel", "ratio", "retention, days, first seen")


def results(experiment) -> dict:
    rows = {name: daily_rows(experiment, CASES[name][0], 8) for name in NAMES}
    rows["exposures"] = daily_exposures(experiment=experiment, boundaries=day_boundaries(experiment, 8))
    return rows


def age_overrides(project, by=dt.timedelta(hours=2)) -> None:
    for override in PersonOverride.objects.filter(project=project):
        PersonOverride.objects.filter(pk=override.pk).update(created_at=override.created_at - by)


def events_carry_current_persons(project) -> bool:
    owners = dict(PersonDistinctId.objects.filter(project=project).values_list("distinct_id", "person__uuid"))
    return all(
        owners.get(distinct_id, person_id) == person_id
        for distinct_id, person_id in Event.objects.filter(project=project).values_list("distinct_id", "person_id")
    )


@pytest.mark.django_db
@pytest.mark.every_database
def test_squash_rewrites_events_and_clears_overrides_with_the_same_results():
    experiment, _, _ = identified_experiment({})
    project = experiment.project
    before = results(experiment)
    assert not events_carry_current_persons(project)

    assert person_overrides_squash() == 0  # younger than an hour: left for in-flight batches
    age_overrides(project)
    count = PersonOverride.objects.filter(project=project).count()
    assert person_overrides_squash(chunk_size=7) == count

    assert not PersonOverride.objects.filter(project=project).exists()
    assert events_carry_current_persons(project)
    assert_close(results(experiment), before, "after squash")
    assert squash_person_overrides.delay().get() == 0  # the periodic task, run again: nothing left


@pytest.mark.django_db
@pytest.mark.every_database
def test_a_partial_run_resolves_the_same_and_the_next_run_finishes():
    experiment, _, _ = identified_experiment({})
    project = experiment.project
    before = results(experiment)
    age_overrides(project)
    total = PersonOverride.objects.filter(project=project).count()

    assert person_overrides_squash(chunk_size=5, max_chunks=1) == 5

    assert PersonOverride.objects.filter(project=project).count() == total - 5
    assert_close(results(experiment), before, "half squashed")
    assert person_overrides_squash() == total - 5
    assert_close(results(experiment), before, "squashed")


SQUASH_SCRIPT = """
import django
django.setup()
from persons.services.squash import person_overrides_squash
import datetime as dt
person_overrides_squash(min_age=dt.timedelta(0), chunk_size=2)
"""


@pytest.mark.django_db(transaction=True)
def test_a_squash_killed_mid_transaction_loses_nothing():
    experiment, _, _ = identified_experiment({})
    project = experiment.project
    before = results(experiment)
    overrides = list(PersonOverride.objects.filter(project=project).order_by("id"))
    assert len(overrides) > 4
    url = session_database_url()
    # Another session holds a row of the second chunk, so the squash blocks inside that chunk's transaction.
    with psycopg.connect(url) as blocker, psycopg.connect(url, autocommit=True) as monitor:
        blocker.execute(
            "SELECT 1 FROM events_event WHERE project_id = %s AND person_id = %s FOR UPDATE",
            [project.pk, overrides[2].old_person_id],
        )
        environment = {**os.environ, "DATABASE_URL": url.replace("postgresql://", "postgres://")}
        environment |= {"DJANGO_SETTINGS_MODULE": "experiments_api.settings.base", "SECRET_KEY": settings.SECRET_KEY}
        process = subprocess.Popen([sys.executable, "-c", SQUASH_SCRIPT], env=environment, cwd=ROOT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                waiting = monitor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE '%UPDATE events_event%'"
                ).fetchone()[0]
                if waiting:
                    break
                time.sleep(0.1)
            assert waiting, f"the squash never reached the second chunk (exit code {process.poll()})"
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        blocker.rollback()

    # The first chunk is applied and gone, the second is intact (its transaction never committed).
    left = set(PersonOverride.objects.filter(project=project).values_list("id", flat=True))
    assert left == {override.id for override in overrides[2:]}
    assert_close(results(experiment), before, "after the kill")
    assert person_overrides_squash(min_age=dt.timedelta(0)) == len(overrides) - 2
    assert events_carry_current_persons(project)
    assert_close(results(experiment), before, "after the rerun")


def stored_events_carry_current_persons(project) -> bool:
    """events_carry_current_persons in the active event store."""
    owners = {
        key: str(value)
        for key, value in PersonDistinctId.objects.filter(project=project).values_list("distinct_id", "person__uuid")
    }
    return all(owners.get(row["distinct_id"], row["person_id"]) == row["person_id"] for row in stored_events(project))


def clickhouse_override_count(project) -> int:
    client = clickhouse_client()
    return client.rows(f"SELECT count() FROM {client.database}.{OVERRIDES_TABLE} WHERE project_id = {project.pk}")[0][0]


@pytest.mark.django_db
@pytest.mark.usefixtures("event_store")
def test_squash_empties_the_overrides_of_every_event_store_with_the_same_results(event_store):
    """On ClickHouse too the events get the survivors' ids (mutations) and its overrides go; a run stopped after a
    chunk, or between a chunk's rewrite and its overrides' deletion, resolves the same persons."""
    experiment, _, _ = identified_experiment({})
    project = experiment.project
    before = results(experiment)
    total = PersonOverride.objects.filter(project=project).count()
    on_clickhouse = event_store == "clickhouse"
    if on_clickhouse:
        assert clickhouse_override_count(project) == total
    assert not stored_events_carry_current_persons(project)

    assert person_overrides_squash(min_age=dt.timedelta(0), chunk_size=5, max_chunks=1) == 5
    assert_close(results(experiment), before, "one chunk squashed")
    if on_clickhouse:
        assert clickhouse_override_count(project) == total - 5
        # Stopped between the next chunk's rewrite and the deletion of its overrides.
        client = clickhouse_client()
        chunk = squashable_overrides(client, cutoff=timezone.now(), limit=5)
        clickhouse_events_rewrite(client, chunk)
        assert clickhouse_override_count(project) == total - 5
        assert_close(results(experiment), before, "rewritten, overrides kept")

    assert person_overrides_squash(min_age=dt.timedelta(0), chunk_size=7) == total - 5
    assert not PersonOverride.objects.filter(project=project).exists()
    if on_clickhouse:
        assert clickhouse_override_count(project) == 0
    assert stored_events_carry_current_persons(project)
    assert_close(results(experiment), before, "squashed")
    assert person_overrides_squash(min_age=dt.timedelta(0)) == 0
    assert_close(results(experiment), before, "run again")
