"""Copy a project's events and persons from the Django database into ClickHouse, resumably.

Events are read in (timestamp, id) order through one server-side cursor and written in blocks, one INSERT each,
so the copy in ClickHouse is always a prefix in time: a rerun resumes at the latest timestamp already copied,
skipping the uuids stored at that instant. Persons, distinct ids and overrides are copied whole (a rerun writes the
same versions, which ReplacingMergeTree collapses).
"""

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from events.models import Event
from persons.models import Person, PersonDistinctId, PersonOverride

from .client import ClickHouseClient, bind
from .schema import DISTINCT_IDS_TABLE, EVENTS_TABLE, OVERRIDES_TABLE, PERSONS_TABLE
from .store import (
    INSERT_BLOCK_ROWS,
    clickhouse_timestamp,
    distinct_id_rows,
    insert_blocks,
    override_rows,
    person_rows,
)

EVENT_COLUMNS = ("uuid", "event", "properties", "timestamp", "distinct_id", "person_id", "created_at")


@dataclass
class CopyResult:
    events: int = 0
    skipped: int = 0
    persons: int = 0
    distinct_ids: int = 0
    overrides: int = 0


def _resume_point(client: ClickHouseClient, project_id: int) -> dt.datetime | None:
    """The latest event timestamp of the project already in ClickHouse."""
    sql = f"SELECT max(timestamp), count() FROM {client.database}.{EVENTS_TABLE} WHERE project_id = %(project)s"
    latest, count = client.rows(bind(sql, {"project": project_id}))[0]
    return dt.datetime.fromisoformat(latest).replace(tzinfo=dt.UTC) if count else None


def _uuids_at(client: ClickHouseClient, project_id: int, instant: dt.datetime) -> set[str]:
    sql = (
        f"SELECT toString(uuid) FROM {client.database}.{EVENTS_TABLE} "
        "WHERE project_id = %(project)s AND timestamp = %(at)s"
    )
    return {row[0] for row in client.rows(bind(sql, {"project": project_id, "at": instant}))}


def _event_rows(project_id: int, events: Iterable[tuple], skip: set[str], counts: CopyResult) -> Iterable[dict]:
    for uuid, event, properties, timestamp, distinct_id, person_id, created_at in events:
        if skip and str(uuid) in skip:
            counts.skipped += 1
            continue
        yield {
            "uuid": str(uuid),
            "event": event,
            "properties": json.dumps(properties, separators=(",", ":")),
            "timestamp": clickhouse_timestamp(timestamp),
            "project_id": project_id,
            "distinct_id": distinct_id,
            "person_id": str(person_id),
            "created_at": clickhouse_timestamp(created_at),
        }


def project_copy_to_clickhouse(
    client: ClickHouseClient, *, project_id: int, progress: Callable[[int], None] = lambda copied: None
) -> CopyResult:
    """Copy what is not in ClickHouse yet; returns the counts written (and events skipped as already there)."""
    counts = CopyResult()
    events = Event.objects.filter(project_id=project_id)
    resume = _resume_point(client, project_id)
    skip: set[str] = set()
    if resume is not None:
        events = events.filter(timestamp__gte=resume)
        skip = _uuids_at(client, project_id, resume)
    ordered = events.order_by("timestamp", "id").values_list(*EVENT_COLUMNS).iterator(chunk_size=INSERT_BLOCK_ROWS)
    block: list[dict] = []
    for row in _event_rows(project_id, ordered, skip, counts):
        block.append(row)
        if len(block) == INSERT_BLOCK_ROWS:
            client.insert_json_rows(EVENTS_TABLE, block)
            counts.events += len(block)
            progress(counts.events)
            block = []
    client.insert_json_rows(EVENTS_TABLE, block)
    counts.events += len(block)
    counts.persons = insert_blocks(
        client, PERSONS_TABLE, person_rows(Person.objects.filter(project_id=project_id).iterator(chunk_size=10_000))
    )
    distinct_ids = PersonDistinctId.objects.filter(project_id=project_id).select_related("person")
    counts.distinct_ids = insert_blocks(
        client, DISTINCT_IDS_TABLE, distinct_id_rows(distinct_ids.iterator(chunk_size=10_000))
    )
    overrides = PersonOverride.objects.filter(project_id=project_id).iterator(chunk_size=10_000)
    counts.overrides = insert_blocks(client, OVERRIDES_TABLE, override_rows(overrides))
    return counts
