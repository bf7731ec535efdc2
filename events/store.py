"""The SQL that stores a batch of events and widens the first/last seen of their names: on PostgreSQL one
statement per batch, re-sent events skipped."""

from collections.abc import Sequence
from datetime import datetime, timedelta

import orjson
from django.db import connection

from events.models import Event
from events.validation import ValidEvent
from experiments_api.statements import prepared_cursor

# A uuid already stored within this distance of an event's timestamp makes the event a re-send. Re-sends carry the
# same uuid and event timestamp, but the skew correction is measured anew at each send, so the corrected
# timestamps can differ slightly; the window (searched with the unique index) absorbs that. The unique index on
# (project, uuid, timestamp) still stops exact duplicates that race past the window check.
DEDUP_WINDOW = timedelta(days=1)
IMPORT_TABLE = "events_import_batch"

# A LATERAL probe with LIMIT keeps the dedup check an index lookup per event; a plain NOT EXISTS lets the planner
# choose a hash anti-join that reads every stored event of the project.
_INSERT_EVENTS_TEMPLATE = """
    INSERT INTO events_event (project_id, uuid, event, distinct_id, "timestamp", properties, created_at, person_id)
    SELECT {project}, batch.uuid, batch.event, batch.distinct_id, batch.ts, batch.properties, {created_at},
        batch.person_id
    FROM {source}
    LEFT JOIN LATERAL (
        SELECT 1 AS found FROM events_event AS stored
        WHERE stored.project_id = {project} AND stored.uuid = batch.uuid
          AND stored."timestamp" BETWEEN batch.ts - {window} AND batch.ts + {window}
        LIMIT 1
    ) AS already_stored ON TRUE
    WHERE already_stored.found IS NULL
    ON CONFLICT DO NOTHING
"""
# First/last seen only ever widen. Names whose range already covers the batch are filtered out before the upsert,
# so concurrent batches of the same events do not queue on those rows' locks; the rest are locked in name order,
# so concurrent batches cannot deadlock.
_UPSERT_DEFINITIONS_TEMPLATE = """
    INSERT INTO events_eventdefinition (project_id, name, first_seen_at, last_seen_at)
    SELECT {project}, seen.name, seen.first_seen, seen.last_seen
    FROM ({seen}) AS seen
    WHERE NOT EXISTS (
        SELECT 1 FROM events_eventdefinition AS known
        WHERE known.project_id = {project} AND known.name = seen.name
          AND known.first_seen_at <= seen.first_seen AND known.last_seen_at >= seen.last_seen
    )
    ORDER BY seen.name
    ON CONFLICT (project_id, name) DO UPDATE SET
        first_seen_at = CASE WHEN excluded.first_seen_at < events_eventdefinition.first_seen_at
                             THEN excluded.first_seen_at ELSE events_eventdefinition.first_seen_at END,
        last_seen_at = CASE WHEN excluded.last_seen_at > events_eventdefinition.last_seen_at
                            THEN excluded.last_seen_at ELSE events_eventdefinition.last_seen_at END
"""
_PARAMS = {"project": "%(project_id)s", "created_at": "%(created_at)s", "window": "%(window)s"}
# PostgreSQL: events and definitions in one statement; the definitions come from the events actually inserted.
_STORE_TEMPLATE = """
    WITH inserted AS (
        {insert_events}
        RETURNING event, "timestamp"
    ), definitions AS (
        {upsert_definitions}
        RETURNING 1
    )
    SELECT COUNT(*) FROM inserted
"""
_STORE_SQL_TEMPLATE = _STORE_TEMPLATE.format(
    insert_events=_INSERT_EVENTS_TEMPLATE.format(source="{source}", **_PARAMS),
    upsert_definitions=_UPSERT_DEFINITIONS_TEMPLATE.format(
        project=_PARAMS["project"],
        seen='SELECT event AS name, MIN("timestamp") AS first_seen, MAX("timestamp") AS last_seen '
        "FROM inserted GROUP BY event",
    ),
)
# The batch as one JSON array parameter, expanded into rows by the server (quoting one string client-side is much
# cheaper than quoting an array per column).
_STORE_JSON_SQL = _STORE_SQL_TEMPLATE.format(
    source="json_to_recordset(%(batch)s::json) "
    "AS batch(uuid uuid, event text, distinct_id text, ts timestamptz, properties jsonb, person_id uuid)"
)
# Bulk import: the rows COPYed into a temporary table first.
_STORE_IMPORT_TABLE_SQL = _STORE_SQL_TEMPLATE.format(source=f"{IMPORT_TABLE} AS batch")
# Other databases (the embedded SQLite, which has no LATERAL): one row, executed for the whole batch at once.
_INSERT_ROW_SQL = """
    INSERT INTO events_event (project_id, uuid, event, distinct_id, "timestamp", properties, created_at, person_id)
    SELECT %s, %s, %s, %s, %s, %s, %s, %s
    WHERE NOT EXISTS (
        SELECT 1 FROM events_event
        WHERE project_id = %s AND uuid = %s AND "timestamp" BETWEEN %s AND %s
    )
    ON CONFLICT DO NOTHING
"""


def unique_by_uuid(events: Sequence[ValidEvent]) -> list[ValidEvent]:
    """The first of each uuid: a batch repeating an event stores it once."""
    seen: set = set()
    unique = []
    for event in events:
        if event.uuid not in seen:
            seen.add(event.uuid)
            unique.append(event)
    return unique


def events_store(*, project_id: int, events: Sequence[ValidEvent], created_at: datetime) -> int:
    """Insert the events not stored yet and widen their names' definitions; returns how many were inserted."""
    if not events:
        return 0
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            return _events_store_row_by_row(cursor, project_id=project_id, events=events, created_at=created_at)
    params = {"project_id": project_id, "created_at": created_at, "window": DEDUP_WINDOW}
    with prepared_cursor() as cursor:
        cursor.execute(_STORE_JSON_SQL, {**params, "batch": _batch_json(events)})
        return cursor.fetchone()[0]


def events_copy_store(*, project_id: int, events: Sequence[ValidEvent], created_at: datetime) -> int:
    """PostgreSQL only, inside a transaction: COPY the events into a temporary table, then store them as
    events_store does; returns how many were inserted."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {IMPORT_TABLE} "
            "(uuid uuid, event text, distinct_id text, ts timestamptz, properties jsonb, person_id uuid) ON COMMIT DROP"
        )
        columns = "uuid, event, distinct_id, ts, properties, person_id"
        with cursor.cursor.copy(f"COPY {IMPORT_TABLE} ({columns}) FROM STDIN") as copy:
            for event in events:
                copy.write_row(
                    (
                        event.uuid,
                        event.event,
                        event.distinct_id,
                        event.timestamp,
                        event.properties_json,
                        event.person_id,
                    )
                )
        cursor.execute(
            _STORE_IMPORT_TABLE_SQL, {"project_id": project_id, "created_at": created_at, "window": DEDUP_WINDOW}
        )
        inserted = cursor.fetchone()[0]
        # Dropped now rather than at commit, for callers whose transaction spans several batches.
        cursor.execute(f"DROP TABLE {IMPORT_TABLE}")
        return inserted


def _batch_json(events: Sequence[ValidEvent]) -> str:
    """The events as a JSON array of {uuid, event, distinct_id, ts, properties, person_id}; properties are already
    JSON."""
    return orjson.dumps(
        [
            {
                "uuid": event.uuid,
                "event": event.event,
                "distinct_id": event.distinct_id,
                "ts": event.timestamp,
                "properties": orjson.Fragment(event.properties_json),
                "person_id": event.person_id,
            }
            for event in events
        ]
    ).decode()


def _events_store_row_by_row(cursor, *, project_id: int, events: Sequence[ValidEvent], created_at: datetime) -> int:
    uuid_field = Event._meta.get_field("uuid")
    rows = []
    for event in events:
        uuid_value = uuid_field.get_db_prep_value(event.uuid, connection)
        rows.append(
            [
                project_id,
                uuid_value,
                event.event,
                event.distinct_id,
                _datetime_param(event.timestamp),
                event.properties_json,
                _datetime_param(created_at),
                Event._meta.get_field("person_id").get_db_prep_value(event.person_id, connection),
                project_id,
                uuid_value,
                _datetime_param(event.timestamp - DEDUP_WINDOW),
                _datetime_param(event.timestamp + DEDUP_WINDOW),
            ]
        )
    cursor.executemany(_INSERT_ROW_SQL, rows)
    inserted = cursor.rowcount
    _definitions_widen(cursor, project_id=project_id, events=events)
    return inserted


def event_definitions_widen(*, project_id: int, events: Sequence[ValidEvent]) -> None:
    """Widen the first/last seen of the events' names (for events stored outside this database)."""
    if events:
        with connection.cursor() as cursor:
            _definitions_widen(cursor, project_id=project_id, events=events)


def _definitions_widen(cursor, *, project_id: int, events: Sequence[ValidEvent]) -> None:
    seen: dict[str, tuple[datetime, datetime]] = {}
    for event in events:
        first, last = seen.get(event.event, (event.timestamp, event.timestamp))
        seen[event.event] = (min(first, event.timestamp), max(last, event.timestamp))
    seen_sql = " UNION ALL ".join(["SELECT %s AS name, %s AS first_seen, %s AS last_seen"] * len(seen))
    seen_params = [
        value for name, (first, last) in seen.items() for value in (name, _datetime_param(first), _datetime_param(last))
    ]
    cursor.execute(
        _UPSERT_DEFINITIONS_TEMPLATE.format(project="%s", seen=seen_sql), [project_id, *seen_params, project_id]
    )


def _datetime_param(value: datetime):
    return Event._meta.get_field("timestamp").get_db_prep_value(value, connection)
