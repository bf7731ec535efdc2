"""A unit's value for one event source and math (total, sum, avg, min, max, unique_session, dau), as SQL.

Each source contributes per-event columns to the scan, per (unit, bucket) deltas, running expressions that give the
unit's value as of each bucket, and, for CUPED, the same value over the pre-exposure window.
"""

from dataclasses import dataclass

from .dialect import Dialect
from .filters import source_sql
from .query import FLOAT
from .spec import EventSource

DISTINCT_MATHS = frozenset({"unique_session", "dau"})


@dataclass(frozen=True)
class SourceValue:
    name: str
    source: EventSource

    @property
    def math(self) -> str:
        return self.source.math

    def columns(self, dialect: Dialect) -> dict[str, str]:
        """Per-event columns: `<name>_match` (0/1), and `<name>_value` or `<name>_key` (the distinct key)."""
        columns = {f"{self.name}_match": f"CASE WHEN {source_sql(dialect, 'm', self.source)} THEN 1 ELSE 0 END"}
        if self.math == "unique_session":
            columns[f"{self.name}_key"] = dialect.text_property("m.properties", "$session_id")
        elif self.math == "dau":
            columns[f"{self.name}_key"] = "'unit'"
        elif self.math == "total":
            columns[f"{self.name}_value"] = "1"
        else:
            columns[f"{self.name}_value"] = (
                f"COALESCE({dialect.number_property('m.properties', self.source.math_property)}, 0)"
            )
        return columns

    def delta_columns(self) -> list[str]:
        if self.math == "avg":
            return [f"{self.name}_sum", f"{self.name}_count"]
        if self.math in ("min", "max"):
            return [f"{self.name}_{self.math}"]
        return [f"{self.name}_sum"]

    def _aggregates(self) -> dict[str, str]:
        value = f"{self.name}_value"
        if self.math in ("min", "max"):
            return {f"{self.name}_{self.math}": f"CAST({self.math.upper()}({value}) AS {FLOAT})"}
        aggregates = {f"{self.name}_sum": f"CAST(SUM({value}) AS {FLOAT})"}
        if self.math == "avg":
            aggregates[f"{self.name}_count"] = "COUNT(*)"
        return aggregates

    def deltas(self, rows: str, all_columns: list[str]) -> str:
        """Per (unit, bucket) rows of this source's post-exposure events, with `all_columns` (others NULL)."""
        keys = "unit, variant, exit_bucket"
        source = f"{rows} WHERE {self.name}_match = 1 AND is_pre = 0"
        if self.math not in DISTINCT_MATHS:
            aggregates = self._aggregates()
        else:
            # A distinct key counts once, in the bucket where the unit first had it.
            key = f"{self.name}_key"
            source = (
                f"(SELECT {keys}, MIN(bucket) AS bucket FROM {source} AND {key} IS NOT NULL AND {key} <> '' "
                f"GROUP BY {keys}, {key}) first_seen"
            )
            aggregates = {f"{self.name}_sum": f"CAST(COUNT(*) AS {FLOAT})"}
        selected = ", ".join(f"{aggregates.get(column, 'NULL')} AS {column}" for column in all_columns)
        return f"SELECT {keys}, bucket, {selected} FROM {source} GROUP BY {keys}, bucket"

    def event_deltas(self, rows: str, all_columns: list[str]) -> str:
        """`deltas` without grouping a (unit, bucket)'s events: a row per post-exposure event (a distinct key still
        once, at its first bucket). Running aggregates over a window whose frame takes in a row's peers (the unit's
        rows of the same bucket) are the same, and that window's sort then does the grouping's work."""
        if self.math in DISTINCT_MATHS:
            return self.deltas(rows, all_columns)
        per_event = dict.fromkeys(self.delta_columns(), f"CAST({self.name}_value AS {FLOAT})")
        if self.math == "avg":
            per_event[f"{self.name}_count"] = "1"
        selected = ", ".join(f"{per_event.get(column, 'NULL')} AS {column}" for column in all_columns)
        return (
            f"SELECT unit, variant, exit_bucket, bucket, {selected} FROM {rows} "
            f"WHERE {self.name}_match = 1 AND is_pre = 0"
        )

    def running(self, window: str) -> dict[str, str]:
        """Window expressions over the unit's change rows giving its running aggregates."""
        if self.math == "avg":
            return {
                f"{self.name}_run_sum": f"SUM({self.name}_sum) OVER {window}",
                f"{self.name}_run_count": f"SUM({self.name}_count) OVER {window}",
            }
        if self.math in ("min", "max"):
            column = f"{self.name}_{self.math}"
            return {f"{self.name}_run": f"{self.math.upper()}({column}) OVER {window}"}
        return {f"{self.name}_run": f"SUM({self.name}_sum) OVER {window}"}

    def state(self) -> str:
        """The unit's value from its running aggregates; 0 before its first event."""
        if self.math == "avg":
            count = f"COALESCE({self.name}_run_count, 0)"
            return f"(CASE WHEN {count} > 0 THEN {self.name}_run_sum * 1.0 / {count} ELSE 0 END)"
        return f"COALESCE({self.name}_run, 0)"

    def covariate(self) -> str:
        """The same value over the pre-exposure rows of one unit (an aggregate over `metric_rows`)."""
        if self.math in DISTINCT_MATHS:
            key = f"{self.name}_key"
            return f"COUNT(DISTINCT CASE WHEN {self.name}_match = 1 AND {key} <> '' THEN {key} END)"
        value = f"CASE WHEN {self.name}_match = 1 THEN {self.name}_value END"
        aggregate = {"total": "SUM", "sum": "SUM", "avg": "AVG", "min": "MIN", "max": "MAX"}[self.math]
        return f"COALESCE({aggregate}({value}), 0)"


def delta_columns(values: list[SourceValue]) -> list[str]:
    return [column for value in values for column in value.delta_columns()]
