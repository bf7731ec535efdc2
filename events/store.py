"""The SQL that writes events and event definitions in bulk: one statement per batch, re-sent events skipped."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import connection

from events.models import Event
from events.validation import ValidEvent

# A uuid already stored within this distance of an event's timestamp makes the event a re-send. Re-sends carry the
# same uuid and event timestamp, but the skew correction is measured anew at each send, so the corrected
# timestamps can differ slightly; the window (searched with the unique index) absorbs that. The unique index on
# (project, uuid, timestamp) still stops exact duplicates that race past the window check.
DEDUP_WINDOW = timedelta(days=1)

_INSERT_TEMPLATE = """
    INSERT INTO events_event (project_id, uuid, event, distinct_id, "timestamp", properties, created_at)
    SELECT {values}
    {source}
    LEFT JOIN LATERAL (
        SELECT 1 AS found FROM events_event AS stored
        WHERE stored.project_id = {project} AND stored.uuid = {uuid}
          AND stored."timestamp" BETWEEN {low} AND {high}
        LIMIT 1
    ) AS already_stored ON TRUE
    WHERE already_stored.found IS NULL
    ON CONFLICT DO NOTHING
"""
_BATCH_COLUMNS = dict(
    values="%(project_id)s, batch.uuid, batch.event, batch.distinct_id, batch.ts, batch.properties, %(created_at)s",
    project="%(project_id)s",
    uuid="batch.uuid",
    low="batch.ts - %(window)s",
    high="batch.ts + %(window)s",
)
# PostgreSQL: the whole batch as arrays, unnested into one INSERT.
_INSERT_ARRAYS_SQL = _INSERT_TEMPLATE.format(
    source="FROM unnest(%(uuids)s::uuid[], %(names)s::text[], %(distinct_ids)s::text[], "
    "%(timestamps)s::timestamptz[], %(properties)s::jsonb[]) AS batch(uuid, event, distinct_id, ts, properties)",
    **_BATCH_COLUMNS,
)
# PostgreSQL bulk import: rows COPYed into a temporary table, then moved with one INSERT.
_IMPORT_TABLE = "events_import_batch"
_INSERT_FROM_IMPORT_TABLE_SQL = _INSERT_TEMPLATE.format(source=f"FROM {_IMPORT_TABLE} AS batch", **_BATCH_COLUMNS)
# Other databases (the embedded SQLite): one parameterised row, executed for the whole batch at once.
_INSERT_ROW_SQL = _INSERT_TEMPLATE.format(
    values="%s, %s, %s, %s, %s, %s, %s", source="", project="%s", uuid="%s", low="%s", high="%s"
)
# First/last seen only ever widen; rows that would not change are not rewritten (no needless row locks).
_UPSERT_DEFINITIONS_SQL = """
    INSERT INTO events_eventdefinition (project_id, name, first_seen_at, last_seen_at)
    VALUES {values}
    ON CONFLICT (project_id, name) DO UPDATE SET
        first_seen_at = CASE WHEN excluded.first_seen_at < events_eventdefinition.first_seen_at
                             THEN excluded.first_seen_at ELSE events_eventdefinition.first_seen_at END,
        last_seen_at = CASE WHEN excluded.last_seen_at > events_eventdefinition.last_seen_at
                            THEN excluded.last_seen_at ELSE events_eventdefinition.last_seen_at END
    WHERE excluded.first_seen_at < events_eventdefinition.first_seen_at
       OR excluded.last_seen_at > events_eventdefinition.last_seen_at
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


def events_insert(*, project_id: int, events: Sequence[ValidEvent], created_at: datetime) -> int:
    """Insert the events not stored yet in one statement; returns how many were inserted."""
    if not events:
        return 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                _INSERT_ARRAYS_SQL,
                {
                    "project_id": project_id,
                    "created_at": created_at,
                    "window": DEDUP_WINDOW,
                    "uuids": [event.uuid for event in events],
                    "names": [event.event for event in events],
                    "distinct_ids": [event.distinct_id for event in events],
                    "timestamps": [event.timestamp for event in events],
                    "properties": [event.properties_json for event in events],
                },
            )
        else:
            cursor.executemany(_INSERT_ROW_SQL, [_row_params(project_id, event, created_at) for event in events])
        return cursor.rowcount


def events_copy_insert(*, project_id: int, events: Sequence[ValidEvent], created_at: datetime) -> int:
    """PostgreSQL only: COPY the events into a temporary table, then insert the ones not stored yet.
    Must run inside a transaction (the temporary table is dropped on commit)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_IMPORT_TABLE} "
            "(uuid uuid, event text, distinct_id text, ts timestamptz, properties jsonb) ON COMMIT DROP"
        )
        with cursor.cursor.copy(f"COPY {_IMPORT_TABLE} (uuid, event, distinct_id, ts, properties) FROM STDIN") as copy:
            for event in events:
                copy.write_row((event.uuid, event.event, event.distinct_id, event.timestamp, event.properties_json))
        cursor.execute(
            _INSERT_FROM_IMPORT_TABLE_SQL,
            {"project_id": project_id, "created_at": created_at, "window": DEDUP_WINDOW},
        )
        inserted = cursor.rowcount
        # Dropped now rather than at commit, for callers whose transaction spans several batches.
        cursor.execute(f"DROP TABLE {_IMPORT_TABLE}")
        return inserted


def event_definitions_upsert(*, project_id: int, events: Sequence[ValidEvent]) -> None:
    """Record each event name with the earliest and latest timestamps of the batch, in one statement."""
    seen: dict[str, tuple[datetime, datetime]] = {}
    for event in events:
        first, last = seen.get(event.event, (event.timestamp, event.timestamp))
        seen[event.event] = (min(first, event.timestamp), max(last, event.timestamp))
    if not seen:
        return
    # Sorted, so concurrent batches lock definition rows in the same order and cannot deadlock.
    names = sorted(seen)
    params: list = []
    for name in names:
        first, last = seen[name]
        params += [project_id, name, _datetime_param(first), _datetime_param(last)]
    values = ", ".join(["(%s, %s, %s, %s)"] * len(names))
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT_DEFINITIONS_SQL.format(values=values), params)


def _datetime_param(value: datetime):
    return Event._meta.get_field("timestamp").get_db_prep_value(value, connection)


def _row_params(project_id: int, event: ValidEvent, created_at: datetime) -> list:
    uuid_value = Event._meta.get_field("uuid").get_db_prep_value(event.uuid, connection)
    return [
        project_id,
        uuid_value,
        event.event,
        event.distinct_id,
        _datetime_param(event.timestamp),
        event.properties_json,
        _datetime_param(created_at),
        project_id,
        uuid_value,
        _datetime_param(event.timestamp - DEDUP_WINDOW),
        _datetime_param(event.timestamp + DEDUP_WINDOW),
    ]
