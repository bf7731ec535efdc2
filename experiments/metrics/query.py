"""The shared part of every results query: time buckets, the exposures CTE and the scan of metric events.

A query answers for a list of ascending `boundaries` (exclusive `query_to` instants). Bucket b holds what happened
in [boundaries[b-1], boundaries[b]); a result "as of boundaries[d]" is the sum of buckets 0..d. The exposures CTE
gives each unit its variant, its first exposure and the buckets where it enters (`exp_bucket`) and, for a unit later
seen in a second variant under `multiple_variant_handling = exclude`, leaves the analysis (`exit_bucket`; the bucket
count when it never leaves).
"""

import datetime as dt
import re
from dataclasses import dataclass, field
from itertools import pairwise

from .breakdowns import SEGMENT_SEPARATOR, segment_sql
from .dialect import Dialect, Params
from .exposure import DEFAULT_EXPOSURE_EVENT, Exposure
from .filters import event_names, person_alias, properties_sql, uses_persons
from .spec import Breakdown, EventSource
from .stores import event_store_dialect

# The arm of units seen in several variants under `exclude` (daily_exposures; counted in a metric's query when
# QueryContext.count_multiple is set).
MULTIPLE_VARIANT_KEY = "$multiple"
# Sums are cast to double precision (exact for integer counts below 2**53) so both databases return floats.
FLOAT = "DOUBLE PRECISION"
MATERIALIZED = "MATERIALIZED "


@dataclass
class Query:
    """CTEs in order, then a final SELECT; run once, on the event store."""

    ctes: list[tuple[str, str]] = field(default_factory=list)
    # CTEs computed on their own whoever reads them (MATERIALIZED, which every store accepts).
    materialized: set[str] = field(default_factory=set)

    def add(self, name: str, sql: str, *, materialized: bool = False) -> str:
        """`materialized` keeps the planner from merging the CTE into its reader: PostgreSQL then plans its
        aggregation on its own (by hashing) instead of sorting its input for the reader's window."""
        self.ctes.append((name, sql))
        if materialized:
            self.materialized.add(name)
        return name

    def sql(self, select: str, *, cte_keyword: str = "") -> str:
        """`cte_keyword` goes before the CTEs read more than once (FROM or JOIN): one read once is best left inline."""
        bodies = [body for _, body in self.ctes] + [select]

        def keyword(index: int, name: str) -> str:
            if name in self.materialized:
                return MATERIALIZED
            pattern = re.compile(rf"\b(?:FROM|JOIN)\s+{name}\b")
            return cte_keyword if sum(len(pattern.findall(body)) for body in bodies[index + 1 :]) > 1 else ""

        return (
            "WITH "
            + ",\n".join(
                f"{name} AS {keyword(index, name)}(\n{body}\n)" for index, (name, body) in enumerate(self.ctes)
            )
            + "\n"
            + select
        )


@dataclass
class QueryContext:
    project_id: int
    exposure: Exposure
    start: dt.datetime
    exposure_end: dt.datetime
    boundaries: list[dt.datetime]
    # Local midnights after the start's local day, up to the last boundary: calendar days for retention windows.
    calendar_boundaries: list[dt.datetime]
    params: Params
    dialect: Dialect
    # With breakdowns, the exposures' `variant` is `<variant>\x1f<segment>` (experiments.metrics.breakdowns).
    breakdowns: tuple[Breakdown, ...] = ()
    # Only units whose first exposure falls in [since, until) (a bandit's period), when set.
    first_exposure_window: tuple[dt.datetime, dt.datetime] | None = None
    # Also count, per bucket of their first exposure, the units that leave for a second variant (what
    # daily_exposures counts as `$multiple`), so a result needs no second read of the exposures.
    count_multiple: bool = False

    @classmethod
    def build(
        cls,
        *,
        project_id: int,
        exposure: Exposure,
        start: dt.datetime,
        end: dt.datetime | None,
        boundaries: list[dt.datetime],
        calendar_boundaries: list[dt.datetime],
        breakdowns: tuple[Breakdown, ...] = (),
        first_exposure_window: tuple[dt.datetime, dt.datetime] | None = None,
        count_multiple: bool = False,
    ) -> "QueryContext":
        if not boundaries or any(later <= earlier for earlier, later in pairwise(boundaries)):
            raise ValueError("boundaries must be a non-empty, strictly ascending list of datetimes.")
        dialect = event_store_dialect()
        return cls(
            project_id=project_id,
            exposure=exposure,
            start=start,
            exposure_end=min(end, boundaries[-1]) if end is not None else boundaries[-1],
            boundaries=boundaries,
            calendar_boundaries=calendar_boundaries,
            params=dialect.params,
            dialect=dialect,
            breakdowns=breakdowns,
            first_exposure_window=first_exposure_window,
            count_multiple=count_multiple,
        )

    @property
    def bucket_count(self) -> int:
        return len(self.boundaries)

    def bucket(self, timestamp: str) -> str:
        return self.dialect.bucket(timestamp, self.boundaries)

    def event_scan_conditions(self, alias: str, names: list[str] | None, since: dt.datetime, until: dt.datetime):
        """Project, event names, time range and the test-account filters: what the events index answers."""
        params = self.params
        conditions = [
            f"{alias}.project_id = {params(self.project_id)}",
            f"{alias}.timestamp >= {params.timestamp(since)}",
            f"{alias}.timestamp < {params.timestamp(until)}",
        ]
        if names is not None:
            conditions.append(f"{alias}.event IN ({', '.join(params(name) for name in names)})")
        conditions.extend(properties_sql(self.dialect, alias, self.exposure.test_account_filters))
        return conditions


def person_join(dialect: Dialect, alias: str, *, with_person_row: bool = False) -> tuple[str, str]:
    """(the LEFT JOIN of the overrides to the events `alias`, the event's person): the person an event was
    ingested for, or the survivor of a merge that person went into (the small overrides table, looked up by uuid;
    the squash job empties it as it rewrites the events). `with_person_row` also joins that person's row (as
    `<alias>_person`, for person-property and cohort filters; a personless event has none)."""
    overrides = f"{alias}_override"
    person = f"COALESCE({overrides}.new_person_id, {alias}.person_id)"
    join = (
        f"LEFT JOIN {dialect.overrides_table} {overrides} ON {overrides}.project_id = {alias}.project_id "
        f"AND {overrides}.old_person_id = {alias}.person_id"
    )
    if with_person_row:
        row = person_alias(alias)
        join += f" LEFT JOIN {dialect.persons_table} {row} ON {row}.project_id = {alias}.project_id AND {row}.uuid = {person}"
    return join, person


def add_exposures(query: Query, ctx: QueryContext) -> str:
    """`exposures(person_id, unit, variant, exposure_ts, exp_bucket, exit_bucket)`: one row per person exposed by
    the last boundary, `unit` being a number that later steps group and sort by (much cheaper than the uuid).
    Its variant is the first one seen (ties broken by variant key); a person seen under several distinct ids is one
    unit."""
    exposure, params, dialect = ctx.exposure, ctx.params, ctx.dialect
    variant = dialect.event_text_property("e", exposure.variant_property)
    conditions = ctx.event_scan_conditions("e", [exposure.event], ctx.start, ctx.exposure_end)
    if exposure.event == DEFAULT_EXPOSURE_EVENT:
        conditions.append(f"{dialect.event_text_property('e', '$feature_flag')} = {params(exposure.flag_key)}")
    conditions.extend(properties_sql(dialect, "e", exposure.properties))
    conditions.append(f"{variant} IN ({', '.join(params(key) for key in exposure.variants)})")
    variant = dialect.not_null(variant)  # the filter above keeps only rows with a variant
    person_breakdowns = any(breakdown.type == "person" for breakdown in ctx.breakdowns)
    join, person = person_join(
        dialect,
        "e",
        with_person_row=person_breakdowns
        or uses_persons(exposure.properties)
        or uses_persons(exposure.test_account_filters),
    )
    scan = f"FROM {dialect.events_table} e {join}\nWHERE " + "\n  AND ".join(conditions)
    if ctx.breakdowns:
        _add_segmented_unit_variants(query, ctx, scan, person, variant)
    else:
        query.add(
            "unit_variants",
            f"SELECT {person} AS person_id, {variant} AS variant, MIN(e.timestamp) AS first_ts\n"
            f"{scan}\nGROUP BY {person}, {variant}",
        )
    never = params(ctx.bucket_count)
    exit_ts, exit_bucket = "NULL", never
    if exposure.multiple_variant_handling == "exclude":
        # The first exposure to another variant: the second-earliest of the unit's per-variant first exposures.
        exit_ts, exit_bucket = f"{dialect.lead('first_ts')} OVER w", f"COALESCE({ctx.bucket('exit_ts')}, {never})"
    arm, segment = "variant", ""
    if ctx.breakdowns:
        arm, segment = f"variant || {params(SEGMENT_SEPARATOR)} || segment", ", segment"
    window = ""
    if ctx.first_exposure_window is not None:
        since, until = ctx.first_exposure_window
        window = f" AND first_ts >= {params.timestamp(since)} AND first_ts < {params.timestamp(until)}"
    return query.add(
        "exposures",
        f"SELECT person_id, DENSE_RANK() OVER (ORDER BY person_id) AS unit, {arm} AS variant, first_ts AS exposure_ts,\n"
        f"  {ctx.bucket('first_ts')} AS exp_bucket, {exit_bucket} AS exit_bucket\n"
        f"FROM (SELECT person_id, variant, first_ts{segment}, {exit_ts} AS exit_ts, ROW_NUMBER() OVER w AS rank\n"
        "  FROM unit_variants WINDOW w AS (PARTITION BY person_id ORDER BY first_ts, variant)) ranked\n"
        "WHERE rank = 1" + window,
    )


def _add_segmented_unit_variants(query: Query, ctx: QueryContext, scan: str, person: str, variant: str) -> None:
    """`unit_variants` as without breakdowns, with the `segment` of each one's first exposure event (ties broken by
    event uuid), in one pass over the exposures: the unit's first variant's row then carries the segment of its
    first exposure (ties broken by variant key, then event uuid)."""
    segment = segment_sql(ctx.dialect, ctx.breakdowns, "e")
    order = f"e.timestamp, {ctx.dialect.uuid_order('e.uuid')}"
    query.add(
        "unit_variants",
        "SELECT person_id, variant, ts AS first_ts, segment FROM (\n"
        f"  SELECT {person} AS person_id, {variant} AS variant, e.timestamp AS ts, {segment} AS segment,\n"
        f"    ROW_NUMBER() OVER (PARTITION BY {person}, {variant} ORDER BY {order}) AS nth\n"
        f"  {scan}) firsts\nWHERE nth = 1",
    )


# Columns of the unit's exposure that scans of metric events may carry along.
EXPOSURE_COLUMNS = {"variant": "x.variant", "exit_bucket": "x.exit_bucket"}


def add_metric_rows(
    query: Query,
    ctx: QueryContext,
    *,
    columns: dict[str, str],
    sources: list[EventSource],
    conversion_window: dt.timedelta | None,
    lookback: dt.timedelta | None,
) -> str:
    """`metric_rows(unit, ts, is_pre, *columns)`: the events of exposed units that may count, in one scan, with
    `columns` computed on the event `m` and its unit's exposure `x` (keep them few: this CTE can be large).

    Rows after the exposure (within `conversion_window` when set) have `is_pre = 0`; with a CUPED `lookback`, rows
    in [exposure − lookback, exposure) come too, with `is_pre = 1`.
    """
    dialect = ctx.dialect
    since = ctx.start - lookback if lookback else ctx.start
    conditions = ctx.event_scan_conditions("m", event_names(sources), since, ctx.boundaries[-1])
    after = "m.timestamp >= x.exposure_ts"
    if conversion_window is not None:
        after += (
            f" AND {dialect.timestamp_order('m.timestamp')} < {dialect.shifted('x.exposure_ts', conversion_window)}"
        )
    if lookback is not None:
        before = (
            f"m.timestamp < x.exposure_ts AND "
            f"{dialect.timestamp_order('m.timestamp')} >= {dialect.shifted('x.exposure_ts', -lookback)}"
        )
        conditions.append(f"(({after}) OR ({before}))")
        is_pre = "CASE WHEN m.timestamp < x.exposure_ts THEN 1 ELSE 0 END"
    else:
        conditions.append(f"({after})")
        is_pre = "0"
    selected = "".join(f",\n  {sql} AS {name}" for name, sql in columns.items())
    filters = [*ctx.exposure.test_account_filters, *(f for source in sources for f in source.properties)]
    join, person = person_join(dialect, "m", with_person_row=uses_persons(filters))
    return query.add(
        "metric_rows",
        f"SELECT x.unit, m.timestamp AS ts, {is_pre} AS is_pre{selected}\n"
        f"FROM {dialect.events_table} m {join} JOIN exposures x ON x.person_id = {person}\nWHERE "
        + "\n  AND ".join(conditions),
    )


def run(query: Query, ctx: QueryContext, select: str) -> list[tuple]:
    return ctx.dialect.rows(query.sql(select, cte_keyword=ctx.dialect.cte_keyword))
