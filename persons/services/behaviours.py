"""The persons a behavioural cohort leaf holds, read from the event store (PostgreSQL, SQLite or ClickHouse, through
the metrics' dialect): one grouped scan of the leaf's events per leaf, persons resolved through the overrides as
every metric does. `negation` is the caller's (it complements within the project's persons).

A person counts by their events only: someone with no event of the leaf's name in its windows matches no
behaviour (PostHog's queries, too, read the persons from their events), so "at most 2 times" means one or two.
"""

import datetime as dt
import uuid

from experiments.metrics.dialect import Dialect
from experiments.metrics.filters import properties_sql
from experiments.metrics.query import person_join
from experiments.metrics.stores import event_store_dialect
from persons.behaviours import (
    PERFORMED_EVENT,
    PERFORMED_EVENT_FIRST_TIME,
    PERFORMED_EVENT_MULTIPLE,
    PERFORMED_EVENT_REGULARLY,
    PERFORMED_EVENT_SEQUENCE,
    RESTARTED_PERFORMING_EVENT,
    STOPPED_PERFORMING_EVENT,
    Behaviour,
)


def _count_if(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


class _Scan:
    """One scan of the project's events of some names, grouped by person (resolved through the overrides)."""

    def __init__(self, dialect: Dialect, project_id: int, names: list[str]) -> None:
        self.dialect = dialect
        self.params = dialect.params
        self.join, self.person = person_join(dialect, "e")
        self.conditions = [
            f"e.project_id = {self.params(project_id)}",
            f"e.event IN ({', '.join(self.params(name) for name in names)})",
        ]

    def at_or_after(self, moment: dt.datetime) -> str:
        return f"e.timestamp >= {self.params.timestamp(moment)}"

    def after(self, moment: dt.datetime) -> str:
        return f"e.timestamp > {self.params.timestamp(moment)}"

    def at_or_before(self, moment: dt.datetime) -> str:
        return f"e.timestamp <= {self.params.timestamp(moment)}"

    def where(self, *conditions: str) -> None:
        self.conditions.extend(conditions)

    def persons(self, having: str | None = None) -> set[uuid.UUID]:
        sql = (
            f"SELECT {self.person} FROM {self.dialect.events_table} e {self.join} "
            f"WHERE {' AND '.join(self.conditions)} GROUP BY {self.person}"
        )
        if having:
            sql += f" HAVING {having}"
        return {_as_uuid(row[0]) for row in self.dialect.rows(sql)}


def _as_uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def behaviour_performers(*, project_id: int, behaviour: Behaviour, now: dt.datetime) -> set[uuid.UUID]:
    """The uuids of the persons whose events meet `behaviour` (negation not applied) as of `now`."""
    dialect = event_store_dialect()
    names = (
        [behaviour.event] if behaviour.seq_event in (None, behaviour.event) else [behaviour.event, behaviour.seq_event]
    )
    scan = _Scan(dialect, project_id, names)
    filters = properties_sql(dialect, "e", behaviour.event_filters)
    since = behaviour.since(now)
    kind = behaviour.kind
    if kind == PERFORMED_EVENT_SEQUENCE:
        return _sequence_performers(scan, behaviour, since, now, filters)
    if kind == PERFORMED_EVENT_FIRST_TIME:
        # The person's first event of that name ever (filters aside) is in the window and matches the filters.
        scan.where(scan.at_or_before(now))
        first = "MIN(e.timestamp)"
        having = f"{first} >= {scan.params.timestamp(since)}"
        if filters:
            having += f" AND MIN(CASE WHEN {' AND '.join(filters)} THEN e.timestamp END) = {first}"
        return scan.persons(having)
    scan.where(*filters, scan.at_or_before(now))
    if kind == PERFORMED_EVENT:
        scan.where(scan.at_or_after(since))
        return scan.persons()
    if kind == PERFORMED_EVENT_MULTIPLE:
        scan.where(scan.at_or_after(since))
        return scan.persons(f"COUNT(*) {behaviour.count_operator} {scan.params(behaviour.operator_value)}")
    recent = now - behaviour.seq_window if behaviour.seq_window is not None else None
    if kind == STOPPED_PERFORMING_EVENT:
        # Did it in (since, now - seq], and not since.
        scan.where(scan.after(since))
        return scan.persons(f"{_count_if(scan.at_or_before(recent))} > 0 AND {_count_if(scan.after(recent))} = 0")
    if kind == RESTARTED_PERFORMING_EVENT:
        # Did it at or before `since`, not in (since, now - seq], and again in (now - seq, now].
        gap = f"{scan.after(since)} AND {scan.at_or_before(recent)}"
        return scan.persons(
            f"{_count_if(scan.at_or_before(since))} > 0 AND {_count_if(gap)} = 0 AND {_count_if(scan.after(recent))} > 0"
        )
    if kind == PERFORMED_EVENT_REGULARLY:
        return _regular_performers(scan, behaviour, now)
    raise AssertionError(f"unknown behaviour {kind!r}")


def _regular_performers(scan: _Scan, behaviour: Behaviour, now: dt.datetime) -> set[uuid.UUID]:
    """Period k (0 = the latest) is (now - (k+1)·P, now - k·P] with P = time_value × time_interval; the person did
    the event `operator operator_value` times in at least `min_periods` of the last `total_periods` periods."""
    period = behaviour.lookback
    scan.where(scan.after(now - period * behaviour.total_periods))
    value = scan.params(behaviour.operator_value)
    met = []
    for k in range(behaviour.total_periods):
        in_period = f"{scan.after(now - period * (k + 1))} AND {scan.at_or_before(now - period * k)}"
        met.append(f"(CASE WHEN {_count_if(in_period)} {behaviour.count_operator} {value} THEN 1 ELSE 0 END)")
    return scan.persons(f"({' + '.join(met)}) >= {scan.params(behaviour.min_periods)}")


def _sequence_performers(
    scan: _Scan, behaviour: Behaviour, since: dt.datetime, now: dt.datetime, filters: list[str]
) -> set[uuid.UUID]:
    """The event (with the filters) at t0 in [since, now], then `seq_event` at t1 with t0 < t1 ≤ t0 + seq window.

    Events are first collapsed to one row per person and timestamp, so "the latest first-step event strictly before
    this row" is a running MAX over the preceding rows; the best first step for a second step is the latest one
    before it."""
    dialect, params = scan.dialect, scan.params
    first_step = " AND ".join([f"e.event = {params(behaviour.event)}", *filters])
    scan.where(scan.at_or_after(since), scan.at_or_before(now))
    steps = (
        f"SELECT {scan.person} AS member_id, e.timestamp AS step_at, "
        f"MAX(CASE WHEN {first_step} THEN 1 ELSE 0 END) AS is_first, "
        f"MAX(CASE WHEN e.event = {params(behaviour.seq_event)} THEN 1 ELSE 0 END) AS is_second "
        f"FROM {dialect.events_table} e {scan.join} WHERE {' AND '.join(scan.conditions)} "
        f"GROUP BY {scan.person}, e.timestamp"
    )
    ordered = (
        "SELECT member_id, step_at, is_second, MAX(CASE WHEN is_first = 1 THEN step_at END) OVER "
        "(PARTITION BY member_id ORDER BY step_at ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS first_at "
        f"FROM ({steps}) steps"
    )
    within = f"{dialect.timestamp_order('step_at')} <= {dialect.shifted('first_at', behaviour.seq_window)}"
    sql = (
        f"SELECT DISTINCT member_id FROM ({ordered}) sequence_rows "
        f"WHERE is_second = 1 AND first_at IS NOT NULL AND {within}"
    )
    return {_as_uuid(row[0]) for row in dialect.rows(sql)}
