"""Quantile metrics: per variant and day, the sample quantile q̂ and the sample quantiles L and U at GrowthBook's
bound levels, for the statistics engine's `QuantileStatistic` (unit level) or `QuantileClusteredStatistic` (event
level).

Each day's distribution is kept as counts of distinct values: a value's count changes only where a unit takes or
leaves it (unit level: the unit's value changes, or it leaves the analysis) or an event enters or leaves (event
level), so the per-day distributions take one row per (variant, distinct value, day) — far fewer than values × days
when values tie, never more. The query returns, per (variant, day), the distinct values around the levels'
positions with the positions they hold; the order statistics are picked from those here. Sample quantiles
interpolate linearly between order statistics (PostgreSQL's `percentile_cont`). L and U are taken for every n* of
GrowthBook's grid (100·2^k); the largest n* ≤ the number of values whose L and U differ is used (no n* means no
inference). The same SQL runs on PostgreSQL, SQLite and ClickHouse.

At event level a value is an event's numeric `math_property` (an event without one is no value, not a zero). Each
unit's S_i (its events at or below its variant's q̂) and N_i (its events) change only where it has events, where q̂
moves past one of its events' values, or where it leaves, so one window over those few change rows per unit gives
the increments of their sums, squares and cross product over the `n_clusters` units with events.
"""

import bisect
import math

from experiments.stats.quantile import quantile_bound_levels

from .filters import source_sql
from .incremental import Increments, accumulate, add_increment_ctes, exit_rows
from .query import EXPOSURE_COLUMNS, FLOAT, Query, QueryContext, add_exposures, add_metric_rows, run
from .spec import MetricSpec
from .values import SourceValue
from .winsorized import add_unit_states

NSTAR_GRID = tuple(100 * 2**k for k in range(20))
QUANTILE_FIELDS = ("quantile_level", "quantile_n", "quantile", "quantile_lower", "quantile_upper", "quantile_nstar")
# Event level: the clustering sums of QuantileClusteredStatistic (S_i in sum*, N_i in denominator*).
CLUSTER_FIELDS = (
    "n_clusters",
    "sum",
    "sum_squares",
    "denominator_sum",
    "denominator_sum_squares",
    "numerator_denominator_sum_product",
)


def _levels(nu: float) -> list[float]:
    """ν, then the levels of L and U for each n* of the grid."""
    levels = [nu]
    for nstar in NSTAR_GRID:
        levels.extend(quantile_bound_levels(nu, nstar))
    return levels


def _position(ctx: QueryContext, level: float) -> str:
    """h = level·(total − 1): the 0-based position of the level's sample quantile."""
    return f"(CAST({ctx.params(level)} AS {FLOAT}) * (total - 1))"


class Distribution:
    """The distinct values of one (variant, day) around the levels' positions, each with the positions it holds
    ([before, cum), 0-based, in ascending order of value), and the number of values `total`."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.values: list[float] = []
        self.ends: list[int] = []

    def add(self, value: float, cum: int) -> None:
        self.values.append(value)
        self.ends.append(cum)

    def _at(self, position: int) -> float:
        return self.values[bisect.bisect_right(self.ends, position)]

    def quantile(self, level: float) -> float:
        """Linear interpolation between the order statistics at floor(h) and floor(h) + 1, h = level·(total − 1)
        (one value: the first)."""
        h = level * (self.total - 1)
        below = math.floor(h)
        lower = self._at(below)
        upper = self._at(below + 1) if below + 1 < self.total else lower
        return lower + (h - below) * (upper - lower)


def _add_distribution(query: Query, ctx: QueryContext, levels: list[float], *, ignore_zeros: bool) -> None:
    """From `value_deltas(variant, value, bucket, change)` (the change of how many of a variant's values equal
    `value` from that bucket on), `value_counts(variant, bucket, value, tally)` (every bucket's distinct values)
    and `ranked(variant, bucket, value, tally, cum, total)`: the distinct values around the levels' positions, each
    holding the `tally` positions up to `cum` of the `total` values in the quantile (those ≠ 0 with `ignore_zeros`).

    (Window orders are unique here, so the default frames are running sums; ClickHouse's LEAD would not see past
    an explicit frame.)
    """
    never = ctx.params(ctx.bucket_count)
    query.add(
        "value_states",
        "SELECT variant, value, bucket, SUM(change) OVER w AS tally, "
        f"{ctx.dialect.lead('bucket')} OVER w AS next_bucket\n"
        "FROM value_deltas WINDOW w AS (PARTITION BY variant, value ORDER BY bucket)",
    )
    query.add(
        "value_counts",
        "SELECT s.variant, d.day AS bucket, s.value, s.tally FROM value_states s\n"
        f"JOIN days d ON d.day >= s.bucket AND d.day < COALESCE(s.next_bucket, {never}) WHERE s.tally > 0",
    )
    nonzero = " WHERE value <> 0" if ignore_zeros else ""
    query.add(
        "ranked",
        "SELECT variant, bucket, value, tally, cum, total FROM (SELECT variant, bucket, value, tally,\n"
        "  SUM(tally) OVER (PARTITION BY variant, bucket ORDER BY value) AS cum,\n"
        f"  SUM(tally) OVER (PARTITION BY variant, bucket) AS total FROM value_counts{nonzero}) positions\n"
        # Only the values around the levels' positions can be picked.
        f"WHERE cum - tally - 1 <= {_position(ctx, max(levels))} AND cum > {_position(ctx, min(levels))}",
    )


def _distributions(rows) -> dict[tuple[str, int], Distribution]:
    """(variant, bucket) → Distribution, from `ranked` rows (variant, bucket, value, cum, total)."""
    distributions: dict[tuple[str, int], Distribution] = {}
    for variant, bucket, value, cum, total in sorted(rows, key=lambda row: (row[0], row[1], row[3])):
        key = (variant, bucket)
        if key not in distributions:
            distributions[key] = Distribution(round(total))
        distributions[key].add(value, round(cum))
    return distributions


def _quantile_fields(sums: dict, levels: list[float], distribution: Distribution | None) -> dict:
    row = {
        "number_of_samples": sums["number_of_samples"],
        "exposures": sums["exposures"],
        "quantile_level": levels[0],
        "quantile_n": distribution.total if distribution else 0,
    }
    if "n_clusters" in sums:
        row |= {field: sums[field] for field in CLUSTER_FIELDS}
    if distribution is None:
        return row | {"quantile": 0.0, "quantile_lower": 0.0, "quantile_upper": 0.0, "quantile_nstar": None}
    estimate, chosen, estimate_bounds = distribution.quantile(levels[0]), None, None
    for position in reversed(range(len(NSTAR_GRID))):
        nstar = NSTAR_GRID[position]
        if nstar > distribution.total:
            continue
        lower, upper = distribution.quantile(levels[1 + 2 * position]), distribution.quantile(levels[2 + 2 * position])
        if lower != upper:
            chosen, estimate_bounds = nstar, (lower, upper)
            break
    lower, upper = estimate_bounds or (estimate, estimate)
    return row | {"quantile": estimate, "quantile_lower": lower, "quantile_upper": upper, "quantile_nstar": chosen}


def _results(
    ctx: QueryContext, select: str, query: Query, sums: list[str], levels: list[float], *, increments: bool
) -> list[dict]:
    """Runs `select`: `ranked` rows (part 0: variant, bucket, value, cum, total) and rows of `sums` per (variant,
    bucket) (part 1: as of the bucket, or increments), padded with NULLs to one width; per bucket, every variant's
    quantile fields."""
    rows = run(query, ctx, select)
    ranked = [row[1:6] for row in rows if row[0] == 0]
    per_bucket = accumulate([row[1:3] + row[6:] for row in rows if row[0] == 1], ctx, sums, increments=increments)
    distributions = _distributions(ranked)
    return [
        {
            variant: _quantile_fields(variant_sums, levels, distributions.get((variant, bucket)))
            for variant, variant_sums in sums_by_variant.items()
        }
        for bucket, sums_by_variant in enumerate(per_bucket)
    ]


def _union(sums_select: str, sums: list[str]) -> str:
    """`ranked` (part 0) and the rows of `sums_select` (part 1: variant, bucket and the columns named `sums`) in one
    result set."""
    nulls = ", ".join("NULL" for _ in sums)
    return (
        f"SELECT 0 AS part, variant, bucket, value, cum, total, {nulls} FROM ranked\n"
        f"UNION ALL\nSELECT 1 AS part, variant, bucket, NULL, NULL, NULL, {', '.join(sums)}\n"
        f"FROM ({sums_select}) sums_rows"
    )


def quantile_statistics(ctx: QueryContext, spec: MetricSpec) -> list[dict]:
    if spec.definition.quantile_type == "event":
        return event_quantile_statistics(ctx, spec)
    definition = spec.definition
    value = SourceValue("v", definition.source)
    query = Query()
    add_exposures(query, ctx)
    add_metric_rows(
        query,
        ctx,
        columns=EXPOSURE_COLUMNS | {"bucket": ctx.bucket("m.timestamp")} | value.columns(ctx.dialect),
        sources=[value.source],
        conversion_window=spec.conversion_window,
        lookback=None,
    )
    add_unit_states(query, ctx, value, per_event=True)
    # A unit holds its value from its state's bucket until its next state or until it leaves.
    end = "CASE WHEN next_bucket IS NOT NULL AND next_bucket < exit_bucket THEN next_bucket ELSE exit_bucket END"
    state = value.state()
    never = ctx.params(ctx.bucket_count)
    query.add(
        "value_deltas",
        "SELECT variant, value, bucket, SUM(change) AS change FROM (\n"
        f"  SELECT variant, {state} AS value, bucket, 1 AS change FROM unit_states WHERE bucket < {end}\n"
        "  UNION ALL\n"
        f"  SELECT variant, {state} AS value, {end} AS bucket, -1 AS change FROM unit_states\n"
        f"  WHERE bucket < {end} AND {end} < {never}) changes\n"
        "GROUP BY variant, value, bucket",
        materialized=True,
    )
    levels = _levels(definition.quantile)
    _add_distribution(query, ctx, levels, ignore_zeros=definition.ignore_zeros)
    # Every unit in the analysis has a value (0 before its first event), so the values count the units.
    units = f"SELECT variant, bucket, CAST(SUM(tally) AS {FLOAT}) AS n FROM value_counts GROUP BY variant, bucket"
    select = _union(
        f"SELECT variant, bucket, n AS number_of_samples, n AS exposures FROM ({units}) units",
        ["number_of_samples", "exposures"],
    )
    return _results(ctx, select, query, ["number_of_samples", "exposures"], levels, increments=False)


def _add_event_values(query: Query, ctx: QueryContext, spec: MetricSpec) -> None:
    """`event_values(unit, variant, exit_bucket, bucket, value)`: each metric event with a value, and
    `value_deltas` (it counts from its bucket until its unit leaves), `days(day)`."""
    definition = spec.definition
    source = definition.source
    add_metric_rows(
        query,
        ctx,
        columns=EXPOSURE_COLUMNS
        | {
            "bucket": ctx.bucket("m.timestamp"),
            "v_match": f"CASE WHEN {source_sql(ctx.dialect, 'm', source)} THEN 1 ELSE 0 END",
            "v_value": ctx.dialect.number_property("m.properties", source.math_property),
        },
        sources=[source],
        conversion_window=spec.conversion_window,
        lookback=None,
    )
    nonzero = " AND v_value <> 0" if definition.ignore_zeros else ""
    query.add(
        "event_values",
        "SELECT unit, variant, exit_bucket, bucket, v_value AS value FROM metric_rows\n"
        f"WHERE v_match = 1 AND v_value IS NOT NULL AND bucket < exit_bucket{nonzero}",
    )
    never = ctx.params(ctx.bucket_count)
    query.add(
        "value_deltas",
        "SELECT variant, value, bucket, SUM(change) AS change FROM (\n"
        "  SELECT variant, value, bucket, 1 AS change FROM event_values\n  UNION ALL\n"
        f"  SELECT variant, value, exit_bucket AS bucket, -1 AS change FROM event_values WHERE exit_bucket < {never}"
        ") changes\nGROUP BY variant, value, bucket",
        materialized=True,
    )
    query.add("days(day)", "VALUES " + ", ".join(f"({day})" for day in range(ctx.bucket_count)))


def event_quantile_statistics(ctx: QueryContext, spec: MetricSpec) -> list[dict]:
    query = Query()
    add_exposures(query, ctx)
    _add_event_values(query, ctx, spec)
    levels = _levels(spec.definition.quantile)
    _add_distribution(query, ctx, levels, ignore_zeros=False)
    _add_cluster_changes(query, ctx, levels[0])
    increments = Increments(
        running={"run_below": "SUM(below) OVER w", "run_events": "SUM(events) OVER w"},
        contributions={
            "n_clusters": "CASE WHEN run_events > 0 THEN 1 ELSE 0 END",
            "sum": "run_below",
            "sum_squares": "run_below * run_below",
            "denominator_sum": "run_events",
            "denominator_sum_squares": "run_events * run_events",
            "numerator_denominator_sum_product": "run_below * run_events",
        },
        constants={"number_of_samples": "1", "exposures": "1"},
    )
    sums = ["number_of_samples", "exposures", *CLUSTER_FIELDS]
    select = _union(add_increment_ctes(query, ctx, increments, sums), sums)
    return _results(ctx, select, query, sums, levels, increments=True)


def _add_cluster_changes(query: Query, ctx: QueryContext, nu: float) -> None:
    """`change_rows(unit, variant, exit_bucket, bucket, below, events)`: where a unit's S_i (its events at or below
    its variant's q̂) and N_i (its events) change, so that the clustering sums come from one window over each
    unit's few change rows instead of a row per unit and bucket.

    An event adds 1 to N_i from its bucket on, and 1 to S_i while its value is at or below the bucket's q̂: from
    its own bucket if it is then, and from or until each later bucket where q̂ moves past its value (the events
    with one of the few values q̂ moves past, joined by equality). The unit's exit row (where its contributions
    drop to zero) comes from `exit_rows`.
    """
    h = _position(ctx, nu)
    # q̂ as `Distribution.quantile` computes it, from the order statistics at floor(h) and floor(h) + 1.
    query.add(
        "estimates",
        f"SELECT variant, bucket, lo + ({h} - {ctx.dialect.floor(h)}) * (COALESCE(hi, lo) - lo) AS estimate\n"
        f"FROM (SELECT variant, bucket, MAX(total) AS total, "
        f"MAX(CASE WHEN cum - tally <= {h} AND {h} < cum THEN value END) AS lo, "
        f"MAX(CASE WHEN cum - tally - 1 <= {h} AND {h} < cum - 1 THEN value END) AS hi\n"
        "  FROM ranked GROUP BY variant, bucket) picks",
    )
    # Between consecutive buckets q̂ moves from one estimate to the next: the values in (low, high] cross it.
    query.add(
        "steps",
        "SELECT a.variant AS variant, a.bucket AS bucket, CASE WHEN a.estimate > b.estimate THEN 1 ELSE -1 END AS "
        "change, CASE WHEN a.estimate > b.estimate THEN b.estimate ELSE a.estimate END AS low, "
        "CASE WHEN a.estimate > b.estimate THEN a.estimate ELSE b.estimate END AS high\n"
        "FROM estimates a JOIN estimates b ON b.variant = a.variant AND b.bucket = a.bucket - 1 "
        "WHERE a.estimate <> b.estimate",
    )
    # Grouped (each row is unique already) so that the planner computes these few rows before joining the events.
    query.add(
        "crossings",
        "SELECT v.variant AS variant, v.value AS value, s.bucket AS bucket, s.change AS change\n"
        "FROM (SELECT DISTINCT variant, value FROM value_deltas) v JOIN steps s ON s.variant = v.variant "
        "AND v.value > s.low AND v.value <= s.high GROUP BY v.variant, v.value, s.bucket, s.change",
    )
    query.add(
        "change_rows",
        "SELECT e.unit AS unit, e.variant AS variant, e.exit_bucket AS exit_bucket, e.bucket AS bucket, "
        "CASE WHEN e.value <= q.estimate THEN 1 ELSE 0 END AS below, 1 AS events\n"
        "FROM event_values e JOIN estimates q ON q.variant = e.variant AND q.bucket = e.bucket\n"
        "UNION ALL\n"
        "SELECT e.unit, e.variant, e.exit_bucket, c.bucket, c.change, 0\n"
        "FROM event_values e JOIN crossings c ON c.variant = e.variant AND c.value = e.value\n"
        "WHERE c.bucket > e.bucket AND c.bucket < e.exit_bucket\n"
        f"UNION ALL\n{exit_rows(ctx, ['below', 'events'])}",
    )
