"""PostHog's squash: rewrite the person id of events whose person was merged away, then drop those overrides.

Overrides are taken in chunks of ids, each chunk one transaction (rewrite its events, delete its overrides), so a
run killed at any point leaves every override either fully applied and gone or still in place: queries resolve
the same persons throughout, and the next run simply continues. Only overrides older than `min_age` are taken, so
a batch that resolved its persons just before a merge committed has stored its events before they are squashed.

With the ClickHouse event store, its overrides are squashed the same way after the Django database's
(events.clickhouse.store.clickhouse_overrides_squash: mutations rewrite the events, then the overrides are
deleted), so ClickHouse's overrides table stays as small as PostgreSQL's.
"""

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from events.clickhouse.client import clickhouse_client
from events.clickhouse.store import clickhouse_overrides_squash
from events.models import Event
from persons.models import PersonOverride

SQUASH_MIN_AGE = dt.timedelta(hours=1)
SQUASH_CHUNK = 500

# UPDATE … FROM works on PostgreSQL and SQLite (3.33+).
_REWRITE_SQL = f"""
    UPDATE {Event._meta.db_table} SET person_id = override.new_person_id
    FROM {PersonOverride._meta.db_table} AS override
    WHERE override.id IN ({{ids}})
      AND {Event._meta.db_table}.project_id = override.project_id
      AND {Event._meta.db_table}.person_id = override.old_person_id
"""


def person_overrides_squash(
    *, min_age: dt.timedelta = SQUASH_MIN_AGE, chunk_size: int = SQUASH_CHUNK, max_chunks: int | None = None
) -> int:
    """Squash the overrides older than `min_age`, `chunk_size` per transaction (at most `max_chunks` chunks);
    returns how many overrides were squashed in the event store (with ClickHouse, its own overrides)."""
    cutoff = timezone.now() - min_age
    squashed, chunks = 0, 0
    while max_chunks is None or chunks < max_chunks:
        count = _squash_chunk(cutoff, chunk_size)
        if not count:
            break
        squashed += count
        chunks += 1
    client = clickhouse_client()
    if client is None:
        return squashed
    return clickhouse_overrides_squash(client, cutoff=cutoff, chunk_size=chunk_size, max_chunks=max_chunks)


def _squash_chunk(cutoff: dt.datetime, chunk_size: int) -> int:
    """One transaction: lock the oldest overrides (a merge re-pointing one waits), rewrite their events, delete."""
    with transaction.atomic():
        ids = list(
            PersonOverride.objects.select_for_update()
            .filter(created_at__lte=cutoff)
            .order_by("id")
            .values_list("id", flat=True)[:chunk_size]
        )
        if not ids:
            return 0
        with connection.cursor() as cursor:
            cursor.execute(_REWRITE_SQL.format(ids=", ".join(["%s"] * len(ids))), ids)
        PersonOverride.objects.filter(id__in=ids).delete()
        return len(ids)
