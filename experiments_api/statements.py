"""Prepared statements for the SQL every capture batch sends (PostgreSQL).

Django's psycopg cursors bind parameters client-side: the values are quoted into the SQL text, so the server
parses and plans every execution anew. The statements a capture batch sends keep one text and carry the batch
as a JSON parameter, so they are worth preparing: a cursor of `prepared_cursor()` sends its parameters
separately and prepares each statement once per connection (psycopg keeps the prepared statements), sparing each
batch the planning and the scan of a literal of tens of kilobytes. Such a cursor runs one statement per execute,
and the connection must be PostgreSQL's own (a transaction-pooling proxy would not keep prepared statements).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.backends.postgresql.base import CursorDebugWrapper, ServerBindingCursor
from django.db.backends.utils import CursorWrapper

# Django turns psycopg's automatic preparation off (prepare_threshold None), which also refuses explicit requests;
# a threshold only ever concerns server-side binding cursors (Django's own bind client-side and never prepare), so
# the first use of this module sets one and then asks for preparation explicitly.
PREPARE_THRESHOLD = 1_000_000


class _PreparingCursor(ServerBindingCursor):
    """psycopg's server-side binding cursor, preparing every statement it executes."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


class _PreparedDebugWrapper(CursorDebugWrapper):
    """Django's logging cursor (tests, DEBUG), logging the statement with its parameters composed in, as Django
    does for its own server-side binding (a prepared execution leaves psycopg no query text to report)."""

    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)


@contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """A Django cursor (queries counted and logged as usual) whose statements are prepared; PostgreSQL only."""
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:
        connection.connection.prepare_threshold = PREPARE_THRESHOLD
    with connection.wrap_database_errors:
        raw = _PreparingCursor(connection.connection)
    cursor = _PreparedDebugWrapper(raw, connection) if connection.queries_logged else connection.make_cursor(raw)
    with cursor:
        yield cursor
