"""Monthly partitions of the PostgreSQL event table, created on demand before events of a new month are written.

Partition `events_event_pYYYYMM` holds [first of the month, first of the next month) in UTC; the DEFAULT
partition `events_event_default` catches rows written without going through ingestion (ORM writes, raw SQL).
Creating a partition moves that month's rows out of the DEFAULT partition first, as PostgreSQL requires.
Dropping a month of old data is `DROP TABLE events_event_pYYYYMM`.
"""

from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import IntegrityError, ProgrammingError, connection, transaction

EVENT_TABLE = "events_event"
DEFAULT_PARTITION = "events_event_default"
# Serialises partition creation across processes (pg_advisory_xact_lock key).
PARTITION_LOCK_KEY = 7_415_001
# CREATE TABLE met a name already taken: duplicate_table (committed before it looked), unique_violation (on the
# catalogue's unique index, committed while it waited).
NAME_TAKEN_SQLSTATES = frozenset({"42P07", "23505"})
# Whether a partition of the event table by that name exists, read from the catalogue with the statement's snapshot.
_PARTITION_EXISTS_SQL = f"""
    SELECT EXISTS (
        SELECT 1 FROM pg_inherits JOIN pg_class ON pg_class.oid = pg_inherits.inhrelid
        WHERE pg_inherits.inhparent = '{EVENT_TABLE}'::regclass AND pg_class.relname = %s
          AND pg_class.relnamespace = current_schema()::regnamespace
    )
"""
# Partitions this process has seen committed; a miss costs one catalogue lookup.
_known_partitions: set[str] = set()


def month_start(timestamp: datetime) -> datetime:
    utc = timestamp.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def partition_name(start: datetime) -> str:
    return f"{EVENT_TABLE}_p{start.year:04d}{start.month:02d}"


def event_partitions_ensure(timestamps: Iterable[datetime]) -> None:
    """Make sure a monthly partition exists for every timestamp (PostgreSQL only; other databases use one table).

    Call it before inserting, outside any transaction that already wrote events: creating a partition locks the
    parent table, and holding row locks on it at the same time could deadlock with a concurrent creator.
    """
    if connection.vendor != "postgresql":
        return
    wanted = {partition_name(start): start for start in {month_start(ts) for ts in timestamps}}
    unknown = sorted(name for name in wanted if name not in _known_partitions)
    if not unknown:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NOT NULL", [unknown])
        existing = {row[0] for row in cursor.fetchall()}
    _remember_on_commit(existing)
    for name in unknown:
        if name not in existing:
            _partition_create(name, wanted[name])


def _partition_create(name: str, start: datetime) -> None:
    """Create the partition unless another process has: under the creation lock, its existence is read from
    pg_class with the statement's own snapshot (which sees every creation committed before the lock was granted);
    a CREATE that still meets the name (a partition created without the lock) counts as created once the
    table is found attached (42P07, or 23505 on the catalogue's unique index when that creation was still running)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK_KEY])
            cursor.execute(_PARTITION_EXISTS_SQL, [name])
            if not cursor.fetchone()[0]:
                _partition_create_locked(cursor, name, start)
    except (ProgrammingError, IntegrityError) as error:
        if getattr(error.__cause__, "sqlstate", None) not in NAME_TAKEN_SQLSTATES:
            raise
        with connection.cursor() as cursor:
            cursor.execute(_PARTITION_EXISTS_SQL, [name])
            if not cursor.fetchone()[0]:
                raise
    _remember_on_commit({name})


def _partition_create_locked(cursor, name: str, start: datetime) -> None:
    lower, upper = start.isoformat(), next_month(start).isoformat()
    cursor.execute(
        f'SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE "timestamp" >= %s AND "timestamp" < %s)',
        [start, next_month(start)],
    )
    if cursor.fetchone()[0]:
        _partition_create_from_default(cursor, name, lower, upper)
    else:
        cursor.execute(f"CREATE TABLE {name} PARTITION OF {EVENT_TABLE} FOR VALUES FROM ('{lower}') TO ('{upper}')")


def _partition_create_from_default(cursor, name: str, lower: str, upper: str) -> None:
    """Move the month's rows out of the DEFAULT partition into a new table, then attach it as the partition."""
    cursor.execute(f"CREATE TABLE {name} (LIKE {EVENT_TABLE} INCLUDING DEFAULTS)")
    cursor.execute(
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
        f"WHERE \"timestamp\" >= '{lower}' AND \"timestamp\" < '{upper}' RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved"
    )
    cursor.execute(f"ALTER TABLE {EVENT_TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{lower}') TO ('{upper}')")


def _remember_on_commit(names: set[str]) -> None:
    """Cache partitions only once committed, so a rolled-back creation is not mistaken for an existing one."""
    if names:
        transaction.on_commit(lambda: _known_partitions.update(names))
