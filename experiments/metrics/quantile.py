"""Quantile metrics: per variant and day, the sample quantile q̂ and the sample quantiles L and U at GrowthBook's
bound levels, for the statistics engine's `QuantileStatistic` (unit level) or `QuantileClusteredStatistic` (event
level).

Values are spread over the buckets they count in (`dense`): at unit level each unit's value over the buckets it holds
it (the rows of winsorized means), at event level each metric event's value from its bucket until its unit leaves.
Sample quantiles interpolate linearly between order statistics (PostgreSQL's `percentile_cont`). PostgreSQL and
ClickHouse compute every level of a (variant, bucket) with their own quantile aggregate (one sort); SQLite ranks the
values once and picks each level's order statistics by conditional aggregates (portable SQL). L and U are taken for
every n* of GrowthBook's grid (100·2^k); the largest n* ≤ the number of values whose L and U differ is used (no n*
means no inference).

At event level a value is an event's numeric `math_property` (an event without one is no value, not a zero), and a
second pass over the events gives each unit's S_i (its events at or below its variant's q̂) and N_i (its events),
summed per (variant, bucket) with their squares and cross product over the `n_clusters` units with events.
"""

import math

from experiments.stats.quantile import quantile_bound_levels

from .filters import source_sql
from .incremental import accumulate
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


def _order_statistics(ctx: QueryContext, level: float, index: int) -> str:
    """The order statistics at positions floor(h) and floor(h) + 1 (0-based), from rows of distinct values that
    hold positions [before, cum)."""
    h = _position(ctx, level)
    return (
        f"MAX(CASE WHEN before <= {h} AND {h} < cum THEN value END) AS lo_{index}, "
        f"MAX(CASE WHEN before - 1 <= {h} AND {h} < cum - 1 THEN value END) AS hi_{index}"
    )


def sample_quantile(level: float, total: int, lower_value: float, upper_value: float) -> float:
    """Linear interpolation between the order statistics around position level·(total − 1)."""
    h = level * (total - 1)
    return lower_value + (h - math.floor(h)) * (upper_value - lower_value)


def _add_levels(query: Query, ctx: QueryContext, levels: list[float], *, ignore_zeros: bool) -> list[str]:
    """From `value_deltas(variant, value, bucket, change)` (the change of how many of a variant's values equal
    `value` from that bucket on), `levels(variant, bucket, n, total, lo_i, hi_i, …)`: n values (total of them in the
    quantile, those ≠ 0 with `ignore_zeros`) and the order statistics around each level; returns their names.

    Each distinct value's count is constant between its changes, so the per-bucket distributions take one row per
    (variant, distinct value, bucket): far fewer than values × buckets when values tie (counts, the many zeros of
    sums), never more. (Window orders are unique here, so the default frames are running sums; ClickHouse's LEAD
    would not see past an explicit frame.)
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
        "SELECT variant, bucket, value, cum - tally AS before, cum, total FROM (SELECT variant, bucket, value, tally,\n"
        "  SUM(tally) OVER (PARTITION BY variant, bucket ORDER BY value) AS cum,\n"
        f"  SUM(tally) OVER (PARTITION BY variant, bucket) AS total FROM value_counts{nonzero}) positions\n"
        # Only the values around the levels' positions can be picked.
        f"WHERE cum - tally - 1 <= {_position(ctx, max(levels))} AND cum > {_position(ctx, min(levels))}",
    )
    picks = ", ".join(_order_statistics(ctx, level, index) for index, level in enumerate(levels))
    names = [f"{side}_{index}" for index in range(len(levels)) for side in ("lo", "hi")]
    query.add(
        "levels",
        "SELECT t.variant AS variant, t.bucket AS bucket, t.n AS n, p.total AS total, "
        + ", ".join(f"p.{name} AS {name}" for name in names)
        + "\n"
        "FROM (SELECT variant, bucket, SUM(tally) AS n FROM value_counts GROUP BY variant, bucket) t\n"
        f"LEFT JOIN (SELECT variant, bucket, MAX(total) AS total, {picks}\n"
        "  FROM ranked GROUP BY variant, bucket) p ON p.variant = t.variant AND p.bucket = t.bucket",
    )
    return names


def _quantile_fields(sums: dict, levels: list[float]) -> dict:
    total = round(sums["quantile_n"])
    row = {
        "number_of_samples": sums["number_of_samples"],
        "exposures": sums["exposures"],
        "quantile_level": levels[0],
        "quantile_n": total,
    }
    if "n_clusters" in sums:
        row |= {field: sums[field] for field in CLUSTER_FIELDS}
    if total == 0:
        return row | {"quantile": 0.0, "quantile_lower": 0.0, "quantile_upper": 0.0, "quantile_nstar": None}

    def at(index: int) -> float:
        return sample_quantile(levels[index], total, sums[f"lo_{index}"], sums[f"hi_{index}"])

    estimate, chosen, estimate_bounds = at(0), None, None
    for position in reversed(range(len(NSTAR_GRID))):
        nstar = NSTAR_GRID[position]
        if nstar > total:
            continue
        lower, upper = at(1 + 2 * position), at(2 + 2 * position)
        if lower != upper:
            chosen, estimate_bounds = nstar, (lower, upper)
            break
    lower, upper = estimate_bounds or (estimate, estimate)
    return row | {"quantile": estimate, "quantile_lower": lower, "quantile_upper": upper, "quantile_nstar": chosen}


def _per_bucket(query: Query, ctx: QueryContext, select: str, outputs: list[str], levels: list[float]) -> list[dict]:
    per_bucket = accumulate(run(query, ctx, select), ctx, outputs, increments=False)
    return [{variant: _quantile_fields(sums, levels) for variant, sums in bucket.items()} for bucket in per_bucket]


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
    add_unit_states(query, ctx, value)
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
    )
    levels = _levels(definition.quantile)
    names = _add_levels(query, ctx, levels, ignore_zeros=definition.ignore_zeros)
    select = (
        "SELECT l.variant, l.bucket, l.n, l.n, COALESCE(l.total, 0), "
        + ", ".join(f"l.{name}" for name in names)
        + "\nFROM levels l"
    )
    return _per_bucket(query, ctx, select, ["number_of_samples", "exposures", "quantile_n", *names], levels)


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
    )
    query.add("days(day)", "VALUES " + ", ".join(f"({day})" for day in range(ctx.bucket_count)))


def event_quantile_statistics(ctx: QueryContext, spec: MetricSpec) -> list[dict]:
    query = Query()
    add_exposures(query, ctx)
    _add_event_values(query, ctx, spec)
    levels = _levels(spec.definition.quantile)
    names = _add_levels(query, ctx, levels, ignore_zeros=False)
    # Each (variant, bucket)'s q̂ as `sample_quantile` computes it, to count each unit's events at or below it.
    h = _position(ctx, levels[0])
    query.add(
        "estimates",
        f"SELECT variant, bucket, lo_0 + ({h} - {ctx.dialect.floor(h)}) * (COALESCE(hi_0, lo_0) - lo_0) AS estimate "
        "FROM levels WHERE total > 0",
    )
    query.add(
        "unit_events",
        "SELECT e.unit AS unit, e.variant AS variant, q.bucket AS bucket, "
        "SUM(CASE WHEN e.value <= q.estimate THEN 1 ELSE 0 END) AS below, "
        "COUNT(*) AS events\nFROM event_values e JOIN estimates q ON q.variant = e.variant AND q.bucket >= e.bucket "
        "AND q.bucket < e.exit_bucket\nGROUP BY e.unit, e.variant, q.bucket",
    )
    query.add(
        "clusters",
        f"SELECT variant, bucket, COUNT(*) AS n_clusters, CAST(SUM(below) AS {FLOAT}) AS below_sum, "
        f"CAST(SUM(below * below) AS {FLOAT}) AS below_squares, CAST(SUM(events) AS {FLOAT}) AS events_sum, "
        f"CAST(SUM(events * events) AS {FLOAT}) AS events_squares, "
        f"CAST(SUM(below * events) AS {FLOAT}) AS products\nFROM unit_events GROUP BY variant, bucket",
    )
    # Units in the analysis per (variant, bucket), with or without events: those entered by then less those left.
    never = ctx.params(ctx.bucket_count)
    query.add(
        "entries",
        f"SELECT variant, exp_bucket AS since, CAST(COUNT(*) AS {FLOAT}) AS change FROM exposures "
        "WHERE exp_bucket < exit_bucket GROUP BY variant, exp_bucket\nUNION ALL\n"
        f"SELECT variant, exit_bucket AS since, -CAST(COUNT(*) AS {FLOAT}) AS change FROM exposures "
        f"WHERE exp_bucket < exit_bucket AND exit_bucket < {never} GROUP BY variant, exit_bucket",
    )
    query.add(
        "counts",
        "SELECT e.variant, d.day AS bucket, SUM(e.change) AS n FROM entries e JOIN days d ON e.since <= d.day "
        "GROUP BY e.variant, d.day",
    )
    clusters = ["n_clusters", "below_sum", "below_squares", "events_sum", "events_squares", "products"]
    select = (
        "SELECT c.variant, c.bucket, c.n, c.n, COALESCE(l.total, 0), "
        + ", ".join(f"l.{name}" for name in names)
        + ", "
        + ", ".join(f"COALESCE(k.{column}, 0)" for column in clusters)
        + "\nFROM counts c LEFT JOIN levels l ON l.variant = c.variant AND l.bucket = c.bucket"
        " LEFT JOIN clusters k ON k.variant = c.variant AND k.bucket = c.bucket"
    )
    outputs = ["number_of_samples", "exposures", "quantile_n", *names, *CLUSTER_FIELDS]
    return _per_bucket(query, ctx, select, outputs, levels)
