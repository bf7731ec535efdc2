"""The few SQL fragments that differ between the event stores: PostgreSQL (production), SQLite (the embedded
default) and ClickHouse (clickhouse.py, when `EVENT_STORE_URL` is set).

Every builder writes portable SQL and asks the dialect only for the tables, JSON property access, time arithmetic,
day buckets and a few typed expressions, so every store computes the same numbers from the same query shape. The
dialect also runs the query (`rows`) on its store.
"""

import datetime as dt
import json

from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from events.models import Event
from persons.models import CohortPerson, Person, PersonOverride

NUMBER_PATTERN = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


class Params:
    """Collects query parameters and hands out named placeholders (`%(p0)s`), which both backends accept."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.values: dict[str, object] = {}
        self._connection = connection

    def __call__(self, value) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s"

    def timestamp(self, value: dt.datetime) -> str:
        return self(self._connection.ops.adapt_datetimefield_value(value))


class Dialect:
    events_table = Event._meta.db_table
    overrides_table = PersonOverride._meta.db_table
    persons_table = Person._meta.db_table
    # Written before each CTE's body (PostgreSQL and SQLite compute a CTE referenced several times once anyway).
    cte_keyword = ""

    def __init__(self, params: Params) -> None:
        self.params = params
        self._boundaries: dict[tuple, object] = {}

    def rows(self, sql: str) -> list[tuple]:
        """Run the query (with `params`) on the Django database."""
        with transaction.atomic(), connection.cursor() as cursor:
            self.prepare(cursor)
            cursor.execute(sql, self.params.values)
            return cursor.fetchall()

    def prepare(self, cursor) -> None:
        """Session settings for the results queries, set inside their transaction."""

    def lead(self, expression: str) -> str:
        """The next row's value in the window, NULL on the last row."""
        return f"LEAD({expression})"

    def not_null(self, expression: str) -> str:
        """`expression`, where the query already ensures it is not NULL."""
        return expression

    def null_integer(self) -> str:
        return "CAST(NULL AS INTEGER)"

    def cohort_member(self, cohort_id: int, person_row: str) -> str:
        """True when the person row `person_row` (joined to the event) is in the cohort."""
        return (
            f"EXISTS (SELECT 1 FROM {CohortPerson._meta.db_table} member WHERE member.cohort_id = "
            f"{self.params(cohort_id)} AND member.person_id = {person_row}.id)"
        )

    def _boundaries_param(self, boundaries: list[dt.datetime], make):
        """One parameter (or list of them) per distinct boundary list, however often it is bucketed."""
        key = tuple(boundaries)
        if key not in self._boundaries:
            self._boundaries[key] = make()
        return self._boundaries[key]

    def text_property(self, column: str, key: str) -> str:
        raise NotImplementedError

    def number_property(self, column: str, key: str) -> str:
        raise NotImplementedError

    def event_text_property(self, alias: str, key: str) -> str:
        """`text_property` of the events row `alias` (a store may keep hot keys in columns of their own)."""
        return self.text_property(f"{alias}.properties", key)

    def regex_match(self, value: str, pattern: str) -> str:
        raise NotImplementedError

    def json_text_array(self, values: list[str]) -> str:
        """A JSON array of the text `values`, as text."""
        raise NotImplementedError

    def contains_case_insensitive(self, value: str, needle: str) -> str:
        raise NotImplementedError

    def floor(self, number: str) -> str:
        """The largest integer ≤ `number` (≥ 0), as a number."""
        return f"floor({number})"

    def uuid_order(self, uuid: str) -> str:
        """A value that orders like the uuid's text (the tie-breaker between events at the same instant)."""
        return uuid

    def timestamp_order(self, timestamp: str) -> str:
        """A value that orders like `timestamp` and can be compared with `shifted`."""
        raise NotImplementedError

    def shifted(self, timestamp: str, delta: dt.timedelta) -> str:
        raise NotImplementedError

    def bucket(self, timestamp: str, boundaries: list[dt.datetime]) -> str:
        """The number of `boundaries` (ascending) at or before `timestamp`: 0 before the first one. A NULL
        timestamp gives NULL on PostgreSQL and the boundary count on SQLite and ClickHouse (callers COALESCE it to
        the count)."""
        raise NotImplementedError

    def hour_difference(self, later: str, earlier: str) -> str:
        """Whole clock hours between the two timestamps' hour starts."""
        raise NotImplementedError


# PostgreSQL estimates a filter on a JSON property at a fraction of a row, so it would join the exposed units to
# their events with one index lookup per unit (a 200k-unit experiment then takes many minutes instead of seconds).
# The results queries are scans and hash joins by design; they also sort and hash a few hundred thousand rows, which
# the default 4MB work_mem would spill to disk, and JIT compilation costs more than it saves on them.
POSTGRES_SETTINGS = {"enable_nestloop": "off", "work_mem": "64MB", "jit": "off"}


class PostgresDialect(Dialect):
    def prepare(self, cursor) -> None:
        for name, value in POSTGRES_SETTINGS.items():
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])

    def text_property(self, column: str, key: str) -> str:
        return f"({column} ->> {self.params(key)})"

    def number_property(self, column: str, key: str) -> str:
        key_param = self.params(key)
        text = f"({column} ->> {key_param})"
        return (
            f"(CASE jsonb_typeof({column} -> {key_param}) WHEN 'number' THEN {text}::double precision "
            f"WHEN 'string' THEN (CASE WHEN {text} ~ {self.params(NUMBER_PATTERN)} "
            f"THEN {text}::double precision END) END)"
        )

    def regex_match(self, value: str, pattern: str) -> str:
        return f"({value} ~ {pattern})"

    def json_text_array(self, values: list[str]) -> str:
        return f"CAST(json_build_array({', '.join(values)}) AS TEXT)"

    def contains_case_insensitive(self, value: str, needle: str) -> str:
        return f"(strpos(lower({value}), lower({needle})) > 0)"

    def timestamp_order(self, timestamp: str) -> str:
        return timestamp

    def shifted(self, timestamp: str, delta: dt.timedelta) -> str:
        return f"({timestamp} + {self.params(delta)}::interval)"

    def bucket(self, timestamp: str, boundaries: list[dt.datetime]) -> str:
        array = self._boundaries_param(boundaries, lambda: self.params(list(boundaries)))
        return f"width_bucket({timestamp}, {array}::timestamptz[])"

    def hour_difference(self, later: str, earlier: str) -> str:
        return f"(extract(epoch from date_trunc('hour', {later}) - date_trunc('hour', {earlier})) / 3600)::integer"


class SqliteDialect(Dialect):
    """SQLite stores timestamps as UTC text ('YYYY-MM-DD HH:MM:SS[.ffffff]'), which orders correctly as text;
    arithmetic goes through julianday(), precise to a few microseconds."""

    def _path(self, key: str) -> str:
        return self.params("$." + json.dumps(key))

    def text_property(self, column: str, key: str) -> str:
        path = self._path(key)
        return (
            f"(CASE json_type({column}, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
            f"ELSE CAST(json_extract({column}, {path}) AS TEXT) END)"
        )

    def number_property(self, column: str, key: str) -> str:
        path = self._path(key)
        value = f"json_extract({column}, {path})"
        return (
            f"(CASE json_type({column}, {path}) WHEN 'integer' THEN {value} * 1.0 WHEN 'real' THEN {value} "
            f"WHEN 'text' THEN (CASE WHEN {value} REGEXP {self.params(NUMBER_PATTERN)} "
            f"THEN CAST(trim({value}) AS REAL) END) END)"
        )

    def regex_match(self, value: str, pattern: str) -> str:
        return f"({value} REGEXP {pattern})"

    def json_text_array(self, values: list[str]) -> str:
        return f"json_array({', '.join(values)})"

    def floor(self, number: str) -> str:
        # floor() needs SQLite's optional math functions; a cast truncates, which is floor for numbers ≥ 0.
        return f"CAST({number} AS INTEGER)"

    def contains_case_insensitive(self, value: str, needle: str) -> str:
        return f"(instr(lower({value}), lower({needle})) > 0)"

    def timestamp_order(self, timestamp: str) -> str:
        return f"julianday({timestamp})"

    def shifted(self, timestamp: str, delta: dt.timedelta) -> str:
        return f"(julianday({timestamp}) + {self.params(delta.total_seconds() / 86400)})"

    def bucket(self, timestamp: str, boundaries: list[dt.datetime]) -> str:
        names = self._boundaries_param(boundaries, lambda: [self.params.timestamp(b) for b in boundaries])
        branches = " ".join(f"WHEN {timestamp} < {name} THEN {index}" for index, name in enumerate(names))
        return f"(CASE {branches} ELSE {len(boundaries)} END)"

    def hour_difference(self, later: str, earlier: str) -> str:
        hour = "'%%Y-%%m-%%d %%H:00:00'"
        return (
            f"CAST(round((julianday(strftime({hour}, {later})) - julianday(strftime({hour}, {earlier}))) * 24) "
            "AS INTEGER)"
        )


def dialect_for(connection: BaseDatabaseWrapper, params: Params) -> Dialect:
    if connection.vendor == "postgresql":
        return PostgresDialect(params)
    if connection.vendor == "sqlite":
        return SqliteDialect(params)
    raise NotImplementedError(
        f"Metric aggregation supports PostgreSQL and SQLite, not {connection.vendor}; set DATABASE_URL to one of them."
    )
