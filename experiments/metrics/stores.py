"""The dialect of the store that holds the events: ClickHouse when `EVENT_STORE_URL` names one, else the Django
database (PostgreSQL or SQLite)."""

from django.db import connection

from events.clickhouse.client import clickhouse_client

from .clickhouse import ClickHouseDialect
from .dialect import Dialect, Params, dialect_for


def event_store_dialect() -> Dialect:
    """A dialect with fresh parameters for one query of the event store."""
    client = clickhouse_client()
    if client is not None:
        return ClickHouseDialect(client)
    return dialect_for(connection, Params(connection))
