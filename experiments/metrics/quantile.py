"""Quantile metrics (unit level): per variant and day, the sample quantile q̂ of the units' values and the sample
quantiles L and U at GrowthBook's bound levels, for the statistics engine's `QuantileStatistic`.

Each unit's value is spread over the buckets it holds it (the `dense` rows of winsorized means); the values of each
(variant, bucket) are ranked once, and every level's order statistics are picked by conditional aggregates, in the
same portable SQL on PostgreSQL and SQLite. Sample quantiles interpolate linearly between order statistics
(PostgreSQL's `percentile_cont`). L and U are taken for every n* of GrowthBook's grid (100·2^k); the largest
n* ≤ the number of values whose L and U differ is used (no n* means no inference).
"""

import math

from experiments.stats.quantile import quantile_bound_levels

from .incremental import accumulate
from .query import EXPOSURE_COLUMNS, FLOAT, Query, QueryContext, add_exposures, add_metric_rows, run
from .spec import MetricSpec
from .values import SourceValue
from .winsorized import add_dense

NSTAR_GRID = tuple(100 * 2**k for k in range(20))
QUANTILE_FIELDS = ("quantile_level", "quantile_n", "quantile", "quantile_lower", "quantile_upper", "quantile_nstar")


def _levels(nu: float) -> list[float]:
    levels = [nu]
    for nstar in NSTAR_GRID:
        levels.extend(quantile_bound_levels(nu, nstar))
    return levels


def _order_statistics(ctx: QueryContext, level: float, index: int) -> str:
    """The order statistics at positions floor(h) and floor(h) + 1 (0-based), h = level·(total − 1)."""
    h = f"(CAST({ctx.params(level)} AS {FLOAT}) * (total - 1))"
    return (
        f"MAX(CASE WHEN position <= {h} AND {h} < position + 1 THEN value END) AS lo_{index}, "
        f"MAX(CASE WHEN position - 1 <= {h} AND {h} < position THEN value END) AS hi_{index}"
    )


def sample_quantile(level: float, total: int, lower_value: float, upper_value: float) -> float:
    """Linear interpolation between the order statistics around position level·(total − 1)."""
    h = level * (total - 1)
    return lower_value + (h - math.floor(h)) * (upper_value - lower_value)


def _quantile_fields(sums: dict, levels: list[float]) -> dict:
    total = round(sums["quantile_n"])
    row = {
        "number_of_samples": sums["number_of_samples"],
        "exposures": sums["exposures"],
        "quantile_level": levels[0],
        "quantile_n": total,
    }
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


def quantile_statistics(ctx: QueryContext, spec: MetricSpec) -> list[dict]:
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
    nonzero = " WHERE value <> 0" if definition.ignore_zeros else ""
    query.add(
        "ranked",
        "SELECT variant, bucket, value, ROW_NUMBER() OVER (PARTITION BY variant, bucket ORDER BY value) - 1 AS "
        f"position,\n  COUNT(*) OVER (PARTITION BY variant, bucket) AS total FROM dense{nonzero}",
    )
    levels = _levels(definition.quantile)
    picks = ", ".join(_order_statistics(ctx, level, index) for index, level in enumerate(levels))
    query.add("levels", f"SELECT variant, bucket, MAX(total) AS total, {picks} FROM ranked GROUP BY variant, bucket")
    query.add("counts", "SELECT variant, bucket, COUNT(*) AS n FROM dense GROUP BY variant, bucket")
    order_columns = [f"{side}_{index}" for index in range(len(levels)) for side in ("lo", "hi")]
    select = (
        "SELECT c.variant, c.bucket, c.n, c.n, COALESCE(l.total, 0), "
        + ", ".join(f"l.{column}" for column in order_columns)
        + "\nFROM counts c LEFT JOIN levels l ON l.variant = c.variant AND l.bucket = c.bucket"
    )
    outputs = ["number_of_samples", "exposures", "quantile_n", *order_columns]
    per_bucket = accumulate(run(query, ctx, select), ctx, outputs, increments=False)
    return [{variant: _quantile_fields(sums, levels) for variant, sums in bucket.items()} for bucket in per_bucket]
