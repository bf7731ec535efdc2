"""ClickHouse's dialect of the results SQL: the same query shape run on the ClickHouse event store.

Properties are JSON text (PostHog's layout), read with the JSON functions; timestamps are DateTime64(6, 'UTC').
Parameters are bound client-side (events/clickhouse/client.py), so the one SQL runs on a server and on chDB.
Cohort members live in the Django database, so a cohort filter carries the members' uuids.
"""

import datetime as dt

from events.clickhouse.client import ClickHouseClient, bind
from events.clickhouse.schema import EVENTS_TABLE, MATERIALIZED_PROPERTIES, OVERRIDES_TABLE, PERSONS_TABLE
from persons.models import CohortPerson

from .dialect import NUMBER_PATTERN, Dialect, Params


class ClickHouseParams(Params):
    """Values are bound by the client, timestamps as they are."""

    def __init__(self) -> None:
        self.values = {}

    def timestamp(self, value: dt.datetime) -> str:
        return self(value)


class ClickHouseDialect(Dialect):
    # ClickHouse inlines a plain CTE wherever it is referenced (the event scan would run once per reference), and
    # materialises one into a temporary table: only those referenced more than once are (Query.sql).
    cte_keyword = "MATERIALIZED "

    def __init__(self, client: ClickHouseClient) -> None:
        super().__init__(ClickHouseParams())
        self.client = client
        self.events_table = f"{client.database}.{EVENTS_TABLE}"
        self.overrides_table = f"{client.database}.{OVERRIDES_TABLE}"
        self.persons_table = f"{client.database}.{PERSONS_TABLE}"

    def rows(self, sql: str) -> list[tuple]:
        return [tuple(row) for row in self.client.rows(bind(sql, self.params.values))]

    def lead(self, expression: str) -> str:
        # ClickHouse fills a missing row with the type's default unless the column is Nullable.
        return f"LEAD(toNullable({expression}))"

    def not_null(self, expression: str) -> str:
        # A non-Nullable key lets ClickHouse group by a plain value: three times faster by (person, variant).
        return f"assumeNotNull({expression})"

    def cohort_member(self, cohort_id: int, person_row: str) -> str:
        members = CohortPerson.objects.filter(cohort_id=cohort_id).values_list("person__uuid", flat=True)
        return f"has({self.params(sorted(members))}, {person_row}.uuid)"

    def _text(self, column: str, key: str) -> str:
        # One parse of the properties: a string's value, any other JSON value's text (ClickHouse ≥ 21.11), NULL for
        # a missing key or JSON null; the same text as PostgreSQL's `->>` gives.
        return f"JSONExtract({column}, {self.params(key)}, 'Nullable(String)')"

    def text_property(self, column: str, key: str) -> str:
        return self._text(column, key)

    def event_text_property(self, alias: str, key: str) -> str:
        column = MATERIALIZED_PROPERTIES.get(key)
        return f"{alias}.{column}" if column else super().event_text_property(alias, key)

    def number_property(self, column: str, key: str) -> str:
        # A JSON number's text always matches the pattern and a boolean's, object's or array's never does, so one
        # test on the text covers numbers and numeric strings alike.
        text = self._text(column, key)
        return f"if(match({text}, {self.params(NUMBER_PATTERN)}), toFloat64OrNull(trimBoth({text})), NULL)"

    def regex_match(self, value: str, pattern: str) -> str:
        return f"match({value}, {pattern})"

    def json_text_array(self, values: list[str]) -> str:
        return f"toJSONString([{', '.join(values)}])"

    def contains_case_insensitive(self, value: str, needle: str) -> str:
        return f"(positionCaseInsensitiveUTF8({value}, {needle}) > 0)"

    def uuid_order(self, uuid: str) -> str:
        # ClickHouse compares UUIDs by their two 64-bit halves, low half first: not in their text's order.
        return f"toString({uuid})"

    def timestamp_order(self, timestamp: str) -> str:
        return timestamp

    def shifted(self, timestamp: str, delta: dt.timedelta) -> str:
        microseconds = delta // dt.timedelta(microseconds=1)
        return f"({timestamp} + toIntervalMicrosecond({self.params(microseconds)}))"

    def bucket(self, timestamp: str, boundaries: list[dt.datetime]) -> str:
        # One comparison after another: a lambda over an array of the boundaries (arrayCount) copies the array for
        # every row, six times slower on a scan of the events. A NULL timestamp gets the boundary count, as on
        # SQLite; the result is then never NULL, so grouping by it stays a plain integer key.
        names = self._boundaries_param(boundaries, lambda: [self.params(boundary) for boundary in boundaries])
        branches = "".join(f"{timestamp} < {name}, {index}, " for index, name in enumerate(names))
        return f"multiIf({branches}{len(boundaries)})"

    def hour_difference(self, later: str, earlier: str) -> str:
        return f"dateDiff('hour', toStartOfHour({earlier}), toStartOfHour({later}))"
