"""Writes to the ClickHouse event store: a batch of events (re-sent uuids skipped, names widened in the Django
database), and the persons, distinct ids and overrides the person step computed for it, copied from the Django
database where they are kept (flags and the persons API read them there)."""

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from events.store import DEDUP_WINDOW, event_definitions_widen
from events.validation import ValidEvent
from persons.models import Person, PersonDistinctId, PersonOverride

from .client import ClickHouseClient, bind
from .schema import DISTINCT_IDS_TABLE, EVENTS_TABLE, OVERRIDES_TABLE, PERSONS_TABLE

# Rows go to ClickHouse in blocks of this many (one INSERT each).
INSERT_BLOCK_ROWS = 50_000


def clickhouse_timestamp(value: datetime) -> str:
    """A DateTime64(6, 'UTC') value as JSONEachRow text."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _stored_uuids(client: ClickHouseClient, *, project_id: int, events: Sequence[ValidEvent]) -> set[str]:
    """The batch's uuids already stored near their timestamps (the same window as the PostgreSQL store)."""
    sql = bind(
        f"SELECT DISTINCT toString(uuid) FROM {client.database}.{EVENTS_TABLE} "
        "WHERE project_id = %(project)s AND timestamp >= %(since)s AND timestamp <= %(until)s AND has(%(uuids)s, uuid)",
        {
            "project": project_id,
            "since": min(event.timestamp for event in events) - DEDUP_WINDOW,
            "until": max(event.timestamp for event in events) + DEDUP_WINDOW,
            "uuids": [event.uuid for event in events],
        },
    )
    return {row[0] for row in client.rows(sql)}


def event_rows(*, project_id: int, events: Iterable[ValidEvent], created_at: datetime) -> Iterable[dict]:
    for event in events:
        yield {
            "uuid": str(event.uuid),
            "event": event.event,
            "properties": event.properties_json,
            "timestamp": clickhouse_timestamp(event.timestamp),
            "project_id": project_id,
            "distinct_id": event.distinct_id,
            "person_id": str(event.person_id),
            "created_at": clickhouse_timestamp(created_at),
        }


def insert_blocks(client: ClickHouseClient, table: str, rows: Iterable[dict]) -> int:
    count, block = 0, []
    for row in rows:
        block.append(row)
        if len(block) == INSERT_BLOCK_ROWS:
            client.insert_json_rows(table, block)
            count, block = count + len(block), []
    client.insert_json_rows(table, block)
    return count + len(block)


def clickhouse_events_store(
    client: ClickHouseClient, *, project_id: int, events: Sequence[ValidEvent], created_at: datetime
) -> int:
    """Insert the events not stored yet and widen their names' definitions; returns how many were inserted."""
    if not events:
        return 0
    stored = _stored_uuids(client, project_id=project_id, events=events)
    new = [event for event in events if str(event.uuid) not in stored]
    insert_blocks(client, EVENTS_TABLE, event_rows(project_id=project_id, events=new, created_at=created_at))
    event_definitions_widen(project_id=project_id, events=new)
    return len(new)


def person_rows(persons: Iterable[Person]) -> Iterable[dict]:
    for person in persons:
        yield {
            "uuid": str(person.uuid),
            "project_id": person.project_id,
            "properties": json.dumps(person.properties, separators=(",", ":")),
            "is_identified": int(person.is_identified),
            "created_at": clickhouse_timestamp(person.created_at),
            "version": person.version,
        }


def distinct_id_rows(distinct_ids: Iterable[PersonDistinctId]) -> Iterable[dict]:
    for row in distinct_ids:
        yield {
            "project_id": row.project_id,
            "distinct_id": row.distinct_id,
            "person_id": str(row.person.uuid),
            "version": row.version,
        }


def override_rows(
    overrides: Iterable[PersonOverride], *, version: int | None = None, is_deleted: int = 0
) -> Iterable[dict]:
    """`version` defaults to each override's creation time in microseconds."""
    for override in overrides:
        yield {
            "project_id": override.project_id,
            "old_person_id": str(override.old_person_id),
            "new_person_id": str(override.new_person_id),
            "created_at": clickhouse_timestamp(override.created_at),
            "version": version if version is not None else int(override.created_at.timestamp() * 1_000_000),
            "is_deleted": is_deleted,
        }


def clickhouse_persons_sync(
    client: ClickHouseClient, *, project_id: int, distinct_ids: set[str], merged: bool, version: int
) -> None:
    """Copy the current persons and distinct ids of `distinct_ids`; after merges, the project's overrides too.

    ClickHouse keeps an override the squash job removed from the Django database (its events there are rewritten,
    not these); an override is deleted only when its old person is a live person again. `version` (increasing,
    e.g. the batch's time in microseconds) makes the newest copy of an override win.
    """
    rows = list(
        PersonDistinctId.objects.filter(project_id=project_id, distinct_id__in=distinct_ids).select_related("person")
    )
    insert_blocks(client, PERSONS_TABLE, person_rows({row.person_id: row.person for row in rows}.values()))
    insert_blocks(client, DISTINCT_IDS_TABLE, distinct_id_rows(rows))
    if not merged:
        return
    current = {override.old_person_id: override for override in PersonOverride.objects.filter(project_id=project_id)}
    copied = dict(
        client.rows(
            bind(
                f"SELECT toString(old_person_id), toString(new_person_id) FROM {client.database}.{OVERRIDES_TABLE} "
                "WHERE project_id = %(project)s",
                {"project": project_id},
            )
        )
    )
    changed = [o for old, o in current.items() if copied.get(str(old)) != str(o.new_person_id)]
    insert_blocks(client, OVERRIDES_TABLE, override_rows(changed, version=version))
    gone = [old for old in copied if old not in {str(key) for key in current}]
    revived = Person.objects.filter(project_id=project_id, uuid__in=gone).values_list("uuid", flat=True)
    deleted = [PersonOverride(project_id=project_id, old_person_id=old, new_person_id=old) for old in revived]
    for override in deleted:
        override.created_at = datetime.fromtimestamp(version / 1_000_000)
    insert_blocks(client, OVERRIDES_TABLE, override_rows(deleted, version=version, is_deleted=1))
