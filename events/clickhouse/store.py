"""Writes to the ClickHouse event store: a batch of events (re-sent uuids skipped, names widened in the Django
database), and the persons, distinct ids and overrides the person step computed for it, copied from the Django
database where they are kept (flags and the persons API read them there); a person's deletion; the squash of old
overrides into the events' person ids."""

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from django.conf import settings

from events.store import DEDUP_WINDOW, event_definitions_widen
from events.validation import ValidEvent
from persons.models import Person, PersonDistinctId, PersonOverride

from .client import ClickHouseClient, bind, literal
from .schema import DISTINCT_IDS_TABLE, EVENTS_TABLE, OVERRIDES_TABLE, PERSONS_TABLE, Layout

# Rows go to ClickHouse in blocks of this many (one INSERT each).
INSERT_BLOCK_ROWS = 50_000
# ClickHouse keeps a person's (or distinct id's) row of highest version. A deleted person's uuid comes back when
# its distinct id sends again (the uuid is derived from it) with version 0, so the version written is the Django
# row's primary key in the high bits (a re-created person or re-added distinct id is a new row with a larger key)
# and its version in the low bits (which only grows during one row's life, merges included). A deletion writes
# that plus DELETED_VERSION_STEP, as PostHog writes version + 100.
ROW_VERSION_BITS = 24
DELETED_VERSION_STEP = 100


def row_version(pk: int, version: int) -> int:
    return (pk << ROW_VERSION_BITS) + version


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
            "version": row_version(person.pk, person.version),
        }


def distinct_id_rows(distinct_ids: Iterable[PersonDistinctId]) -> Iterable[dict]:
    for row in distinct_ids:
        yield {
            "project_id": row.project_id,
            "distinct_id": row.distinct_id,
            "person_id": str(row.person.uuid),
            "version": row_version(row.pk, row.version),
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

    An override missing from the Django database is left to the squash job (clickhouse_overrides_squash deletes
    it once ClickHouse's events are rewritten) unless its old person is a live person again: then it is deleted
    here. Persons merged away get deleted rows. `version` (increasing, e.g. the batch's time in microseconds) makes
    the newest copy of an override win.
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
    _merged_away_delete(client, project_id=project_id, person_ids={o.old_person_id for o in changed})
    gone = [old for old in copied if old not in {str(key) for key in current}]
    revived = Person.objects.filter(project_id=project_id, uuid__in=gone).values_list("uuid", flat=True)
    deleted = [PersonOverride(project_id=project_id, old_person_id=old, new_person_id=old) for old in revived]
    for override in deleted:
        override.created_at = datetime.fromtimestamp(version / 1_000_000)
    insert_blocks(client, OVERRIDES_TABLE, override_rows(deleted, version=version, is_deleted=1))


def _merged_away_delete(client: ClickHouseClient, *, project_id: int, person_ids: set) -> None:
    """Persons merged into others (gone from the Django database) get deleted rows above their stored version."""
    live = set(Person.objects.filter(project_id=project_id, uuid__in=person_ids).values_list("uuid", flat=True))
    gone = [str(person_id) for person_id in person_ids - live]
    if not gone:
        return
    stored = client.rows(
        bind(
            "SELECT toString(uuid), properties, is_identified, toString(created_at), version "
            f"FROM {client.database}.{PERSONS_TABLE} WHERE project_id = %(project)s AND has(%(uuids)s, toString(uuid))",
            {"project": project_id, "uuids": gone},
        )
    )
    insert_blocks(
        client,
        PERSONS_TABLE,
        (
            {
                "uuid": person_uuid,
                "project_id": project_id,
                "properties": properties,
                "is_identified": is_identified,
                "created_at": created_at,
                "version": stored_version + DELETED_VERSION_STEP,
                "is_deleted": 1,
            }
            for person_uuid, properties, is_identified, created_at, stored_version in stored
        ),
    )


def _microseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _events_mutation(client: ClickHouseClient, action: str) -> None:
    """`ALTER TABLE events <action>` on the table that stores the rows (each shard's, on a cluster), waiting until
    every replica has applied it."""
    client.command(Layout(database=client.database, cluster=settings.CLICKHOUSE_CLUSTER).events_mutation(action))


def _uuid_list(ids: Iterable) -> str:
    return ", ".join(literal(uuid.UUID(str(value))) for value in ids)


def overrides_into(client: ClickHouseClient, *, project_id: int, person_id) -> list[str]:
    """Old person ids that ClickHouse's overrides send to `person_id` (current rows)."""
    sql = bind(
        f"SELECT toString(old_person_id) FROM {client.database}.{OVERRIDES_TABLE} "
        "WHERE project_id = %(project)s AND new_person_id = toUUID(%(person)s)",
        {"project": project_id, "person": str(person_id)},
    )
    return [row[0] for row in client.rows(sql)]


def clickhouse_person_delete(
    client: ClickHouseClient,
    *,
    person: Person,
    distinct_ids: Sequence[PersonDistinctId],
    merged: Sequence[PersonOverride],
    delete_events: bool,
    now: datetime,
) -> None:
    """Mirror a deletion in the Django database: the person and its distinct ids get rows with is_deleted=1 and a
    higher version, the overrides deleted there (`merged`, into this person) too; with `delete_events`, the
    events of the person and of every person merged into it (also those whose override only ClickHouse still
    keeps) are deleted by a mutation. Idempotent: running it again writes the same outcome."""
    if delete_events:
        merged_ids = {str(override.old_person_id) for override in merged}
        merged_ids |= set(overrides_into(client, project_id=person.project_id, person_id=person.uuid))
        _events_mutation(
            client,
            f"DELETE WHERE project_id = {int(person.project_id)} "
            f"AND person_id IN ({_uuid_list([person.uuid, *merged_ids])})",
        )
    version = _microseconds(now)
    insert_blocks(client, OVERRIDES_TABLE, override_rows(merged, version=version, is_deleted=1))
    deleted = {"is_deleted": 1}
    insert_blocks(
        client,
        DISTINCT_IDS_TABLE,
        (row | deleted | {"version": row["version"] + DELETED_VERSION_STEP} for row in distinct_id_rows(distinct_ids)),
    )
    (person_row,) = person_rows([person])
    insert_blocks(
        client,
        PERSONS_TABLE,
        [person_row | deleted | {"version": person_row["version"] + DELETED_VERSION_STEP}],
    )


def squashable_overrides(client: ClickHouseClient, *, cutoff: datetime, limit: int) -> list[PersonOverride]:
    """The first `limit` current overrides created by `cutoff`, in (project, old person) order."""
    sql = bind(
        "SELECT project_id, toString(old_person_id), toString(new_person_id), toUnixTimestamp64Micro(created_at) "
        f"FROM {client.database}.{OVERRIDES_TABLE} WHERE created_at <= %(cutoff)s "
        "ORDER BY project_id, old_person_id LIMIT %(limit)s",
        {"cutoff": cutoff, "limit": limit},
    )
    return [
        PersonOverride(
            project_id=project_id,
            old_person_id=uuid.UUID(old),
            new_person_id=uuid.UUID(new),
            created_at=datetime.fromtimestamp(micros / 1_000_000, tz=UTC),
        )
        for project_id, old, new, micros in client.rows(sql)
    ]


def clickhouse_events_rewrite(client: ClickHouseClient, overrides: Sequence[PersonOverride]) -> None:
    """Give the events of each override's old person its new person id (one mutation per project). Events
    resolve to the same person before, during (a mutation applies part by part) and after it."""
    by_project: dict[int, list[PersonOverride]] = {}
    for override in overrides:
        by_project.setdefault(override.project_id, []).append(override)
    for project_id, group in sorted(by_project.items()):
        olds = literal([str(override.old_person_id) for override in group])
        news = literal([str(override.new_person_id) for override in group])
        _events_mutation(
            client,
            f"UPDATE person_id = toUUID(transform(toString(person_id), {olds}, {news}, toString(person_id))) "
            f"WHERE project_id = {int(project_id)} AND person_id IN ({_uuid_list(o.old_person_id for o in group)})",
        )


def clickhouse_overrides_squash(
    client: ClickHouseClient, *, cutoff: datetime, chunk_size: int, max_chunks: int | None
) -> int:
    """PostHog's squash on ClickHouse: the overrides created before `cutoff`, `chunk_size` at a time, have their
    events rewritten (clickhouse_events_rewrite), then are deleted (rows with is_deleted=1 and a newer version).

    Safe to stop anywhere: until an override is deleted its events resolve through it, rewritten or not, and the
    next run rewrites again (nothing left to change) and deletes it. Returns how many overrides were squashed."""
    squashed, chunks = 0, 0
    while max_chunks is None or chunks < max_chunks:
        overrides = squashable_overrides(client, cutoff=cutoff, limit=chunk_size)
        if not overrides:
            break
        clickhouse_events_rewrite(client, overrides)
        now = datetime.now(tz=UTC)
        insert_blocks(client, OVERRIDES_TABLE, override_rows(overrides, version=_microseconds(now), is_deleted=1))
        squashed += len(overrides)
        chunks += 1
    return squashed
