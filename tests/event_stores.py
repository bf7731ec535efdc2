"""The event stores a test module can run on: `pytestmark = pytest.mark.usefixtures("event_store")` runs each of
its tests on the Django database and on ClickHouse (chDB in this process); `store_raw_events` and `store_raw_persons`
write to the active one.

The suite's main session runs on PostgreSQL; `scripts/test` then runs these modules again on SQLite, the embedded
default (`experiments_api.settings.test_sqlite`, ClickHouse left to the main session): one parametrised suite, three
stores."""

import json
from collections.abc import Iterable

import pytest
from django.db import connection

from events.clickhouse.client import clickhouse_client
from events.clickhouse.schema import EVENTS_TABLE, PERSONS_TABLE, Layout, clickhouse_migrate
from events.clickhouse.store import clickhouse_timestamp, insert_blocks, person_rows
from events.models import Event
from persons.models import Person, person_uuid

# "postgresql" or "sqlite": the vendor of the session's Django database, the store when ClickHouse is not configured.
DATABASE_STORE = connection.vendor
EVENT_STORES = (DATABASE_STORE, "clickhouse") if DATABASE_STORE == "postgresql" else (DATABASE_STORE,)
CHDB_URL = "chdb://:memory:?database=test_events"


def clickhouse_truncate(client) -> None:
    for table in Layout(database=client.database).tables():
        client.command(f"TRUNCATE TABLE IF EXISTS {client.database}.{table}")


@pytest.fixture(params=EVENT_STORES)
def event_store(request, settings) -> str:
    """The store's name; with "clickhouse", EVENT_STORE_URL is chDB with empty tables."""
    if request.param == "clickhouse":
        settings.EVENT_STORE_URL = CHDB_URL
        client = clickhouse_client()
        clickhouse_migrate(client)
        clickhouse_truncate(client)
        yield request.param
        clickhouse_truncate(client)
    else:
        yield request.param


def stored_events(project) -> list[dict]:
    """The project's stored events in the active store: uuid (str), event, distinct_id, properties (dict),
    person_id (str); a re-sent event that ClickHouse has not merged away yet counts once (FINAL)."""
    client = clickhouse_client()
    if client is None:
        rows = Event.objects.filter(project=project).values("uuid", "event", "distinct_id", "properties", "person_id")
        return [row | {"uuid": str(row["uuid"]), "person_id": str(row["person_id"])} for row in rows]
    rows = client.rows(
        "SELECT toString(uuid), event, distinct_id, properties, toString(person_id) "
        f"FROM {client.database}.{EVENTS_TABLE} WHERE project_id = {int(project.pk)}"
    )
    return [
        {
            "uuid": uuid,
            "event": event,
            "distinct_id": distinct_id,
            "properties": json.loads(properties),
            "person_id": person,
        }
        for uuid, event, distinct_id, properties, person in rows
    ]


def store_raw_events(project, events: Iterable) -> None:
    """Write `tests.metric_reference.RawEvent`s as they are (no ingestion), personless, to the active store."""
    client = clickhouse_client()
    if client is None:
        Event.objects.bulk_create(
            Event(
                project=project,
                uuid=event.uuid,
                event=event.event,
                distinct_id=event.distinct_id,
                timestamp=event.timestamp,
                properties=event.properties,
            )
            for event in events
        )
        return
    insert_blocks(
        client,
        EVENTS_TABLE,
        (
            {
                "uuid": str(event.uuid),
                "event": event.event,
                "properties": json.dumps(event.properties),
                "timestamp": clickhouse_timestamp(event.timestamp),
                "project_id": project.pk,
                "distinct_id": event.distinct_id,
                "person_id": str(person_uuid(project.pk, event.distinct_id)),
                "created_at": clickhouse_timestamp(event.timestamp),
            }
            for event in events
        ),
    )


def store_raw_persons(project, properties: dict[str, dict]) -> None:
    """One person per distinct id (the person `store_raw_events` gives its events) with these properties, in the
    Django database and, with ClickHouse, in its person table too (as ingestion copies them)."""
    persons = Person.objects.bulk_create(
        Person(project=project, uuid=person_uuid(project.pk, distinct_id), properties=values)
        for distinct_id, values in properties.items()
    )
    client = clickhouse_client()
    if client is not None:
        insert_blocks(client, PERSONS_TABLE, person_rows(persons))
