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
    _add_cluster_changes(query, ctx, levels)
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
    level_outputs = ["quantile_n", *names]
    increment_rows = add_increment_ctes(query, ctx, increments, sums)
    # One result set: the levels as of each bucket (part 0) and the clustering sums' increments (part 1).
    nulls = ", ".join("NULL" for _ in sums)
    select = (
        f"SELECT 0 AS part, variant, bucket, COALESCE(total, 0), {', '.join(names)}, {nulls} FROM levels\n"
        "UNION ALL\n"
        f"SELECT 1 AS part, variant, bucket, {', '.join('NULL' for _ in level_outputs)}, {', '.join(sums)}\n"
        f"FROM ({increment_rows}) increment_rows"
    )
    rows = run(query, ctx, select)
    width = len(level_outputs)
    as_of = accumulate([row[1 : 3 + width] for row in rows if row[0] == 0], ctx, level_outputs, increments=False)
    added = accumulate([(*row[1:3], *row[3 + width :]) for row in rows if row[0] == 1], ctx, sums, increments=True)
    per_bucket = []
    for levels_by_variant, sums_by_variant in zip(as_of, added, strict=True):
        zero = dict.fromkeys(level_outputs, 0.0)
        per_bucket.append(
            {
                variant: _quantile_fields(sums | levels_by_variant.get(variant, zero), levels)
                for variant, sums in sums_by_variant.items()
            }
        )
    return per_bucket


def _add_cluster_changes(query: Query, ctx: QueryContext, levels: list[float]) -> None:
    """`change_rows(unit, variant, exit_bucket, bucket, below, events)`: where a unit's S_i (its events at or below
    its variant's q̂) and N_i (its events) change, so that the clustering sums come from one window over each
    unit's few change rows instead of a row per unit and bucket.

    An event adds 1 to N_i from its bucket on, and 1 to S_i while its value is at or below the bucket's q̂: it
    enters S_i if it is at its own bucket, and leaves or re-enters where q̂ moves past its value (the events with
    one of the values q̂ moves past, found by equality on the few distinct values). The unit's exit row (its
    contributions drop to zero there) comes from `exit_rows`.
    """
    h = _position(ctx, levels[0])
    query.add(
        "estimates",
        f"SELECT variant, bucket, lo_0 + ({h} - {ctx.dialect.floor(h)}) * (COALESCE(hi_0, lo_0) - lo_0) AS estimate "
        "FROM levels WHERE total > 0",
    )
    # Between consecutive buckets, q̂ moves from `previous` to `estimate`: the values in (low, high] cross it.
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
