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
from dataclasses import dataclass

from experiments.stats.quantile import quantile_bound_levels

from .filters import source_sql
from .incremental import accumulate
from .query import EXPOSURE_COLUMNS, FLOAT, Query, QueryContext, add_exposures, add_metric_rows, run
from .spec import MetricSpec
from .values import SourceValue
from .winsorized import add_dense

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
    """The order statistics at positions floor(h) and floor(h) + 1 (0-based)."""
    h = _position(ctx, level)
    return (
        f"MAX(CASE WHEN position <= {h} AND {h} < position + 1 THEN value END) AS lo_{index}, "
        f"MAX(CASE WHEN position - 1 <= {h} AND {h} < position THEN value END) AS hi_{index}"
    )


def sample_quantile(level: float, total: int, lower_value: float, upper_value: float) -> float:
    """Linear interpolation between the order statistics around position level·(total − 1)."""
    h = level * (total - 1)
    return lower_value + (h - math.floor(h)) * (upper_value - lower_value)


@dataclass(frozen=True)
class Levels:
    """What the `levels(variant, bucket, n, total, …)` CTE holds besides `n` (its dense rows) and `total` (the
    values in the quantile): SQL over `l` for each output, named `q_i` (level i's sample quantile) or `lo_i`/`hi_i`
    (the order statistics around it), and q̂ as SQL over `levels`."""

    columns: list[str]
    outputs: list[str]
    estimate: str


def _add_levels(query: Query, ctx: QueryContext, levels: list[float], *, ignore_zeros: bool) -> Levels:
    """`levels` over the `dense` values; with `ignore_zeros` only those ≠ 0 count in `total` and the quantiles."""
    used = "CASE WHEN value <> 0 THEN value END" if ignore_zeros else "value"
    native = ctx.dialect.sample_quantiles(used, levels)
    if native is not None:
        query.add(
            "levels",
            f"SELECT variant, bucket, COUNT(*) AS n, COUNT({used}) AS total, {native} AS picks\n"
            "FROM dense GROUP BY variant, bucket",
        )
        return Levels(
            columns=[f"l.picks[{index + 1}]" for index in range(len(levels))],
            outputs=[f"q_{index}" for index in range(len(levels))],
            estimate="picks[1]",
        )
    nonzero = " WHERE value <> 0" if ignore_zeros else ""
    query.add(
        "ranked",
        "SELECT variant, bucket, value, ROW_NUMBER() OVER (PARTITION BY variant, bucket ORDER BY value) - 1 AS "
        f"position,\n  COUNT(*) OVER (PARTITION BY variant, bucket) AS total FROM dense{nonzero}",
    )
    h = _position(ctx, levels[0])
    picks = ", ".join(_order_statistics(ctx, level, index) for index, level in enumerate(levels))
    names = [f"{side}_{index}" for index in range(len(levels)) for side in ("lo", "hi")]
    query.add(
        "levels",
        "SELECT c.variant, c.bucket, c.n, p.total, p.floor_0, "
        + ", ".join(f"p.{name}" for name in names)
        + "\nFROM (SELECT variant, bucket, COUNT(*) AS n FROM dense GROUP BY variant, bucket) c\n"
        f"LEFT JOIN (SELECT variant, bucket, MAX(total) AS total, {picks},\n"
        f"  MAX(CASE WHEN position <= {h} AND {h} < position + 1 THEN position END) AS floor_0\n"
        "  FROM ranked GROUP BY variant, bucket) p ON p.variant = c.variant AND p.bucket = c.bucket",
    )
    return Levels(
        columns=[f"l.{name}" for name in names],
        outputs=names,
        # As `sample_quantile` computes it (floor_0 = floor(h)).
        estimate=f"lo_0 + ({h} - floor_0) * (COALESCE(hi_0, lo_0) - lo_0)",
    )


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
        if f"q_{index}" in sums:
            return sums[f"q_{index}"]
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
    add_dense(query, ctx, value, covariates=None)
    levels = _levels(definition.quantile)
    picked = _add_levels(query, ctx, levels, ignore_zeros=definition.ignore_zeros)
    select = f"SELECT l.variant, l.bucket, l.n, l.n, COALESCE(l.total, 0), {', '.join(picked.columns)}\nFROM levels l"
    return _per_bucket(query, ctx, select, ["number_of_samples", "exposures", "quantile_n", *picked.outputs], levels)


def _add_event_dense(query: Query, ctx: QueryContext, spec: MetricSpec) -> None:
    """`dense(unit, variant, bucket, value)`: each metric event's value in every bucket from its own until its
    unit leaves the analysis; `days(day)`."""
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
    nonzero = " AND e.v_value <> 0" if definition.ignore_zeros else ""
    query.add("days(day)", "VALUES " + ", ".join(f"({day})" for day in range(ctx.bucket_count)))
    query.add(
        "dense",
        "SELECT e.unit, e.variant, d.day AS bucket, e.v_value AS value\n"
        "FROM metric_rows e JOIN days d ON d.day >= e.bucket AND d.day < e.exit_bucket\n"
        f"WHERE e.v_match = 1 AND e.v_value IS NOT NULL{nonzero}",
    )


def event_quantile_statistics(ctx: QueryContext, spec: MetricSpec) -> list[dict]:
    query = Query()
    add_exposures(query, ctx)
    _add_event_dense(query, ctx, spec)
    levels = _levels(spec.definition.quantile)
    picked = _add_levels(query, ctx, levels, ignore_zeros=False)
    query.add("estimates", f"SELECT variant, bucket, {picked.estimate} AS estimate FROM levels")
    query.add(
        "unit_events",
        "SELECT d.unit, d.variant, d.bucket, SUM(CASE WHEN d.value <= q.estimate THEN 1 ELSE 0 END) AS below, "
        "COUNT(*) AS events\nFROM dense d JOIN estimates q ON q.variant = d.variant AND q.bucket = d.bucket\n"
        "GROUP BY d.unit, d.variant, d.bucket",
    )
    query.add(
        "clusters",
        f"SELECT variant, bucket, COUNT(*) AS n_clusters, CAST(SUM(below) AS {FLOAT}) AS below_sum, "
        f"CAST(SUM(below * below) AS {FLOAT}) AS below_squares, CAST(SUM(events) AS {FLOAT}) AS events_sum, "
        f"CAST(SUM(events * events) AS {FLOAT}) AS events_squares, "
        f"CAST(SUM(below * events) AS {FLOAT}) AS products\nFROM unit_events GROUP BY variant, bucket",
    )
    # Units in the analysis per (variant, bucket), with or without events.
    query.add(
        "counts",
        "SELECT x.variant, d.day AS bucket, COUNT(*) AS n\n"
        "FROM exposures x JOIN days d ON d.day >= x.exp_bucket AND d.day < x.exit_bucket GROUP BY x.variant, d.day",
    )
    clusters = ["n_clusters", "below_sum", "below_squares", "events_sum", "events_squares", "products"]
    select = (
        f"SELECT c.variant, c.bucket, c.n, c.n, COALESCE(l.total, 0), {', '.join(picked.columns)}, "
        + ", ".join(f"COALESCE(k.{column}, 0)" for column in clusters)
        + "\nFROM counts c LEFT JOIN levels l ON l.variant = c.variant AND l.bucket = c.bucket"
        " LEFT JOIN clusters k ON k.variant = c.variant AND k.bucket = c.bucket"
    )
    outputs = ["number_of_samples", "exposures", "quantile_n", *picked.outputs, *CLUSTER_FIELDS]
    return _per_bucket(query, ctx, select, outputs, levels)
