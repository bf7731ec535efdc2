"""Copy a project's events and persons from the Django database into ClickHouse, resumably.

Events are read in (timestamp, id) order by one COPY, serialised by PostgreSQL, and written in blocks, one INSERT each,
so the copy in ClickHouse is always a prefix in time: a rerun resumes at the latest timestamp already copied,
skipping the uuids stored at that instant. Persons, distinct ids and overrides are copied whole (a rerun writes the
same versions, which ReplacingMergeTree collapses).
"""

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from psycopg import sql as sql_lib

from persons.models import Person, PersonDistinctId, PersonOverride

from .client import ClickHouseClient, bind
from .schema import DISTINCT_IDS_TABLE, EVENTS_TABLE, OVERRIDES_TABLE, PERSONS_TABLE
from .store import (
    INSERT_BLOCK_ROWS,
    distinct_id_rows,
    insert_blocks,
    override_rows,
    person_rows,
)

# PostgreSQL writes the events as JSONEachRow text, one block of {block} lines per row streamed back, in
# (timestamp, id) order; the rows after the resume point (those at it already copied skipped by uuid).
_EVENTS_AS_JSON = """
    SELECT string_agg(line, E'\\n' ORDER BY position)
    FROM (
        SELECT ROW_NUMBER() OVER (ORDER BY "timestamp", id) AS position, json_build_object(
            'uuid', uuid, 'event', event, 'properties', properties::text,
            'timestamp', to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
            'project_id', project_id, 'distinct_id', distinct_id, 'person_id', person_id,
            'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'))::text AS line
        FROM events_event
        WHERE project_id = {project} AND "timestamp" >= {since} AND NOT ("timestamp" = {since} AND uuid = ANY({skip}))
    ) lines
    GROUP BY (position - 1) / {block}
    ORDER BY (position - 1) / {block}
"""
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NOT_POSTGRES = "The copy reads events from PostgreSQL: DATABASE_URL must be a postgres:// URL."


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


def project_copy_to_clickhouse(
    client: ClickHouseClient, *, project_id: int, progress: Callable[[int], None] = lambda copied: None
) -> CopyResult:
    """Copy what is not in ClickHouse yet; returns the counts written (and events skipped as already there)."""
    if connection.vendor != "postgresql":
        raise ImproperlyConfigured(NOT_POSTGRES)
    counts = CopyResult()
    resume = _resume_point(client, project_id)
    skip = sorted(_uuids_at(client, project_id, resume)) if resume is not None else []
    counts.skipped = len(skip)
    sql = sql_lib.SQL(_EVENTS_AS_JSON).format(
        project=sql_lib.Literal(project_id),
        since=sql_lib.Literal(resume or EPOCH),
        skip=sql_lib.Literal([uuid.UUID(value) for value in skip]) + sql_lib.SQL("::uuid[]"),
        block=sql_lib.Literal(INSERT_BLOCK_ROWS),
    )
    # A savepoint: a copy stopped mid-stream cancels the query, which must not abort the caller's transaction.
    with transaction.atomic(), connection.cursor() as cursor:
        for (block,) in cursor.cursor.stream(sql):
            client.insert_json_text(EVENTS_TABLE, block)
            counts.events += block.count("\n") + 1
            progress(counts.events)
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
