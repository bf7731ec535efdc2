"""The ClickHouse event store: the URL setting, idempotent table creation (single node and cluster), re-sent and
re-imported events stored once, duplicates counted once at read, and the copies of persons, distinct ids and
overrides that merges leave."""

import datetime as dt
import io
import json
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.utils import timezone

from events.clickhouse.client import UNSUPPORTED_URL, _client_for, bind, clickhouse_client
from events.clickhouse.schema import (
    DISTINCT_IDS_TABLE,
    EVENTS_TABLE,
    OVERRIDES_TABLE,
    PERSONS_TABLE,
    Layout,
)
from events.management.commands.clickhouse_migrate import NOT_CONFIGURED
from events.models import Event, EventDefinition
from experiments.metrics import daily_variant_statistics
from persons.models import Person, PersonOverride
from tests.event_stores import CHDB_URL, store_raw_events, stored_events
from tests.metric_reference import RawEvent
from tests.test_metric_aggregation import START, day_boundaries, events_node, make_experiment, mean

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def clickhouse(settings):
    """chDB with empty tables, through the same fixture as the parametrised suites."""
    settings.EVENT_STORE_URL = CHDB_URL
    client = clickhouse_client()
    call_command("clickhouse_migrate", stdout=io.StringIO())
    for table in Layout(database=client.database).tables():
        client.command(f"TRUNCATE TABLE {client.database}.{table}")
    return client


def post_batch(client, project, events, sent_at=None):
    body = {"api_key": project.api_token, "batch": events}
    if sent_at is not None:
        body["sent_at"] = sent_at.isoformat()
    response = client.post("/batch/", json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content


def make_event(name="$pageview", distinct_id="user-1", **extra) -> dict:
    return {"event": name, "distinct_id": distinct_id, "uuid": str(uuid.uuid4()), "properties": {}, **extra}


@pytest.mark.parametrize("url", ["mysql://localhost/events", "chdb", "http://127.0.0.1:8123"])
def test_an_unknown_event_store_url_is_refused_with_the_accepted_forms(url):
    with pytest.raises(ImproperlyConfigured) as raised:
        _client_for(url)
    assert str(raised.value) == UNSUPPORTED_URL.format(url=url)


def test_migrate_needs_a_clickhouse_url(settings):
    settings.EVENT_STORE_URL = ""
    with pytest.raises(CommandError) as raised:
        call_command("clickhouse_migrate")
    assert str(raised.value) == NOT_CONFIGURED


def test_migrate_is_idempotent_and_keeps_the_rows(clickhouse, project):
    store_raw_events(project, [RawEvent("purchase", "u1", START)])
    stdout = io.StringIO()
    call_command("clickhouse_migrate", stdout=stdout)
    call_command("clickhouse_migrate", stdout=stdout)
    tables = {row[0] for row in clickhouse.rows(f"SHOW TABLES FROM {clickhouse.database}")}
    assert tables == {EVENTS_TABLE, PERSONS_TABLE, DISTINCT_IDS_TABLE, OVERRIDES_TABLE}
    assert len(stored_events(project)) == 1
    engines = dict(clickhouse.rows(f"SELECT name, engine FROM system.tables WHERE database = '{clickhouse.database}'"))
    assert set(engines.values()) == {"ReplacingMergeTree"}


def test_the_cluster_layout_replicates_and_shards_events_by_person(settings, clickhouse):
    settings.CLICKHOUSE_CLUSTER = "analytics"
    stdout = io.StringIO()
    call_command("clickhouse_migrate", "--print", stdout=stdout)
    statements = stdout.getvalue()
    db = clickhouse.database
    assert f"CREATE TABLE IF NOT EXISTS {db}.sharded_events ON CLUSTER 'analytics'" in statements
    assert (
        f"ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{db}.sharded_events', '{{replica}}'" in statements
    )
    assert f"ENGINE = Distributed('analytics', '{db}', 'sharded_events', sipHash64(person_id))" in statements
    for table in (PERSONS_TABLE, DISTINCT_IDS_TABLE, OVERRIDES_TABLE):
        assert f"'/clickhouse/tables/noshard/{db}.{table}', '{{replica}}', version, is_deleted)" in statements


def test_literals_quote_strings_and_bind_every_type():
    sql = bind(
        "SELECT %(text)s, %(at)s, %(values)s, %(none)s, %(flag)s, '100%%'",
        {
            "text": "it's a \\ test",
            "at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
            "values": [1, 2.5],
            "none": None,
            "flag": True,
        },
    )
    assert sql == (
        "SELECT 'it\\'s a \\\\ test', toDateTime64('2025-01-01 00:00:00.000000', 6, 'UTC'), [1, 2.5], NULL, true, "
        "'100%'"
    )


def test_capture_writes_events_to_clickhouse_not_postgres_and_widens_definitions(clickhouse, client, project):
    post_batch(client, project, [make_event(), make_event("purchase", properties={"amount": 5})])
    rows = stored_events(project)
    assert sorted(row["event"] for row in rows) == ["$pageview", "purchase"]
    assert not Event.objects.filter(project=project).exists()
    assert {"$pageview", "purchase"} <= set(
        EventDefinition.objects.filter(project=project).values_list("name", flat=True)
    )


def test_a_resend_with_a_later_sent_at_is_stored_once(clickhouse, client, project):
    sent_at = timezone.now()
    event = make_event(timestamp=(sent_at - dt.timedelta(seconds=30)).isoformat())
    post_batch(client, project, [event], sent_at=sent_at)
    post_batch(client, project, [event], sent_at=sent_at + dt.timedelta(seconds=2, milliseconds=350))
    raw_count = clickhouse.rows(
        f"SELECT count() FROM {clickhouse.database}.{EVENTS_TABLE} WHERE project_id = {project.pk} SETTINGS final = 0"
    )
    assert raw_count == [[1]]


def test_a_duplicate_that_races_past_the_check_counts_once_in_results(clickhouse):
    experiment = make_experiment()
    flag = {"$feature_flag": "checkout-flow", "$feature_flag_response": "test"}
    exposure = RawEvent("$feature_flag_called", "unit", START + dt.timedelta(hours=1), flag)
    purchase = RawEvent("purchase", "unit", START + dt.timedelta(hours=2))
    # Written twice without ingestion's check, as two concurrent batches could.
    store_raw_events(experiment.project, [exposure, purchase])
    store_raw_events(experiment.project, [exposure, purchase])
    statistics = daily_variant_statistics(
        experiment=experiment, metric=mean(events_node("purchase")), boundaries=day_boundaries(experiment, 2)
    )
    test = {row["key"]: row for row in statistics.variants[-1]}["test"]
    assert (test["number_of_samples"], test["sum"]) == (1, 1)


def test_import_writes_to_clickhouse_and_a_second_import_stores_nothing(clickhouse, project, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(
        "".join(
            json.dumps({"event": "purchase", "distinct_id": f"u{n}", "timestamp": "2025-05-01T10:00:00Z"}) + "\n"
            for n in range(5)
        )
    )
    outputs = []
    for _ in range(2):
        stdout = io.StringIO()
        call_command("import_events", str(path), "--project", str(project.pk), stdout=stdout, stderr=io.StringIO())
        outputs.append(stdout.getvalue().strip())
    assert outputs[1] == f"Imported 0 events into project {project.pk}; 5 already stored, 0 bad lines skipped."
    assert sorted(row["distinct_id"] for row in stored_events(project)) == [f"u{n}" for n in range(5)]


def _copied(client, table: str, columns: str, project) -> list[list]:
    return client.rows(
        f"SELECT {columns} FROM {client.database}.{table} WHERE project_id = {project.pk} ORDER BY {columns}"
    )


def test_persons_distinct_ids_and_overrides_follow_a_merge(clickhouse, client, project):
    at = "2025-05-01T10:00:00Z"
    post_batch(
        client,
        project,
        [
            make_event(distinct_id="anon", timestamp=at),
            make_event(distinct_id="user", timestamp=at, **{"$set": {"plan": "pro"}}),
        ],
    )
    post_batch(
        client,
        project,
        [make_event("$identify", distinct_id="user", timestamp=at, properties={"$anon_distinct_id": "anon"})],
    )
    survivor = Person.objects.get(project=project, distinct_ids__distinct_id="user")
    override = PersonOverride.objects.get(project=project)
    assert override.new_person_id == survivor.uuid
    assert _copied(clickhouse, OVERRIDES_TABLE, "toString(old_person_id), toString(new_person_id)", project) == [
        [str(override.old_person_id), str(survivor.uuid)]
    ]
    assert _copied(clickhouse, DISTINCT_IDS_TABLE, "distinct_id, toString(person_id)", project) == [
        ["anon", str(survivor.uuid)],
        ["user", str(survivor.uuid)],
    ]
    persons = _copied(clickhouse, PERSONS_TABLE, "toString(uuid), is_identified, properties", project)
    survivor_row = [row for row in persons if row[0] == str(survivor.uuid)]
    assert survivor_row == [[str(survivor.uuid), 1, json.dumps(survivor.properties, separators=(",", ":"))]]
    assert json.loads(survivor_row[0][2])["plan"] == "pro"
    # The anonymous event carries the merged person's uuid; the override resolves it to the survivor.
    anon_event = next(row for row in stored_events(project) if row["distinct_id"] == "anon")
    assert anon_event["person_id"] == str(override.old_person_id)


class Interrupted(Exception):
    pass


def test_copying_a_project_resumes_after_an_interruption_and_gives_the_same_results(settings, monkeypatch):
    from events.clickhouse import copy
    from tests.metric_reference import sample_identified_events
    from tests.test_person_metrics import ingest

    settings.EVENT_STORE_URL = ""
    experiment = make_experiment()
    events, identifies, _ = sample_identified_events(3, start=START, flag_key="checkout-flow")
    ingest(experiment.project, events)
    ingest(experiment.project, identifies)
    metric = mean(events_node("purchase"))
    boundaries = day_boundaries(experiment, 4)
    on_postgres = daily_variant_statistics(experiment=experiment, metric=metric, boundaries=boundaries)
    total = Event.objects.filter(project=experiment.project).count()
    assert PersonOverride.objects.filter(project=experiment.project).exists()

    settings.EVENT_STORE_URL = CHDB_URL
    client = clickhouse_client()
    call_command("clickhouse_migrate", stdout=io.StringIO())
    for table in Layout(database=client.database).tables():
        client.command(f"TRUNCATE TABLE {client.database}.{table}")
    monkeypatch.setattr(copy, "INSERT_BLOCK_ROWS", 100)

    def stop_after_two_blocks(copied: int) -> None:
        if copied >= 200:
            raise Interrupted

    with pytest.raises(Interrupted):
        copy.project_copy_to_clickhouse(client, project_id=experiment.project.pk, progress=stop_after_two_blocks)
    assert len(stored_events(experiment.project)) == 200
    stdout = io.StringIO()
    call_command(
        "clickhouse_copy_project", "--project", str(experiment.project.pk), stdout=stdout, stderr=io.StringIO()
    )
    persons = Person.objects.filter(project=experiment.project).count()
    overrides = PersonOverride.objects.filter(project=experiment.project).count()
    assert f"Copied {total - 200} events" in stdout.getvalue()
    assert f"{persons} persons" in stdout.getvalue() and f"{overrides} overrides" in stdout.getvalue()
    raw_count = client.rows(
        f"SELECT count() FROM {client.database}.{EVENTS_TABLE} WHERE project_id = {experiment.project.pk} "
        "SETTINGS final = 0"
    )
    assert raw_count == [[total]]
    on_clickhouse = daily_variant_statistics(experiment=experiment, metric=metric, boundaries=boundaries)
    assert on_clickhouse.variants == on_postgres.variants
    assert on_clickhouse.exposures == on_postgres.exposures
    call_command(
        "clickhouse_copy_project", "--project", str(experiment.project.pk), stdout=stdout, stderr=io.StringIO()
    )
    assert client.rows(
        f"SELECT count() FROM {client.database}.{EVENTS_TABLE} WHERE project_id = {experiment.project.pk} "
        "SETTINGS final = 0"
    ) == [[total]]
