"""Winsorized mean metrics: each unit's value clamped at percentiles of all exposed units' values, day by day.

The bounds move as units accumulate value, so increments cannot be summed; instead each unit's value is spread over
the buckets it holds it (units × buckets rows), and the bounds and clamped sums are computed per bucket. Percentiles
follow ClickHouse's quantileExact, as PostHog does: the value at 0-based position floor(p·n) of the sorted values.
"""

from .incremental import UNIT_WINDOW, accumulate
from .query import FLOAT, Query, QueryContext, run
from .spec import Winsorization
from .values import SourceValue


def _position_of(ctx: QueryContext, percentile: float) -> str:
    """True on the one row of a bucket's sorted values that is the `percentile` quantile."""
    target = f"CAST({ctx.params(percentile)} AS {FLOAT}) * total"
    return f"((position - 1 <= {target} AND {target} < position) OR (position = total AND {target} >= total))"


def _add_bound(query: Query, ctx: QueryContext, name: str, percentile: float, *, ignore_zeros: bool) -> str:
    nonzero = " WHERE value <> 0" if ignore_zeros else ""
    query.add(
        f"{name}_ranked",
        "SELECT bucket, value, ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY value) AS position,\n"
        f"  COUNT(*) OVER (PARTITION BY bucket) AS total FROM dense{nonzero}",
    )
    return query.add(
        f"{name}s",
        f"SELECT bucket, MIN(value) AS {name} FROM {name}_ranked WHERE {_position_of(ctx, percentile)} GROUP BY bucket",
    )


def add_unit_states(query: Query, ctx: QueryContext, value: SourceValue, *, per_event: bool = False) -> str:
    """`unit_states(unit, variant, exit_bucket, bucket, next_bucket, <running columns>)`: each unit's running
    aggregates from the bucket of each of its changes (its exposure, its events' buckets; with `per_event`, each of
    its events, so a bucket's last row holds the unit's value from that bucket on) until the next one (NULL after
    the last), and `days(day)`: every bucket."""
    columns = value.delta_columns()
    nulls = "".join(f", NULL AS {column}" for column in columns)
    deltas = value.event_deltas("metric_rows", columns) if per_event else value.deltas("metric_rows", columns)
    query.add(
        "change_rows",
        f"{deltas}\nUNION ALL\n"
        f"SELECT unit, variant, exit_bucket, exp_bucket AS bucket{nulls} FROM exposures WHERE exp_bucket < exit_bucket",
    )
    running = ", ".join(f"{sql} AS {name}" for name, sql in value.running("w").items())
    query.add(
        "unit_states",
        f"SELECT unit, variant, exit_bucket, bucket, {ctx.dialect.lead('bucket')} OVER w AS next_bucket, {running}\n"
        f"FROM change_rows WINDOW w AS {UNIT_WINDOW}",
    )
    return query.add("days(day)", "VALUES " + ", ".join(f"({day})" for day in range(ctx.bucket_count)))


def add_dense(query: Query, ctx: QueryContext, value: SourceValue, *, covariates: str | None) -> str:
    """`dense(unit, variant, bucket, value[, covariate])`: every unit's value in every bucket it is analysed in."""
    add_unit_states(query, ctx, value)
    covariate_join = f" LEFT JOIN {covariates} c ON c.unit = s.unit" if covariates else ""
    covariate = ", COALESCE(c.covariate, 0) AS covariate" if covariates else ""
    return query.add(
        "dense",
        f"SELECT s.unit, s.variant, d.day AS bucket, {value.state()} AS value{covariate}\n"
        f"FROM unit_states s JOIN days d ON d.day >= s.bucket AND d.day < s.exit_bucket\n"
        f"  AND d.day < COALESCE(s.next_bucket, {ctx.params(ctx.bucket_count)}){covariate_join}",
    )


def winsorized_statistics(
    query: Query, ctx: QueryContext, value: SourceValue, winsorization: Winsorization, *, covariates: str | None
) -> list[dict]:
    """Levels per (variant, bucket) of n, clamped sum and sum of squares (and CUPED sums), every bucket."""
    add_dense(query, ctx, value, covariates=covariates)
    # least(greatest(value, lower), upper), as PostHog clamps.
    clamped, joins = "value", ""
    if winsorization.lower is not None:
        bounds = _add_bound(query, ctx, "lower_bound", winsorization.lower, ignore_zeros=False)
        clamped = "CASE WHEN lower_bound IS NOT NULL AND value < lower_bound THEN lower_bound ELSE value END"
        joins += f" LEFT JOIN {bounds} USING (bucket)"
    if winsorization.upper is not None:
        bounds = _add_bound(query, ctx, "upper_bound", winsorization.upper, ignore_zeros=winsorization.ignore_zeros)
        clamped = (
            f"CASE WHEN upper_bound IS NOT NULL AND ({clamped}) > upper_bound THEN upper_bound ELSE ({clamped}) END"
        )
        joins += f" LEFT JOIN {bounds} USING (bucket)"
    outputs = ["number_of_samples", "exposures", "sum", "sum_squares"]
    sums = "COUNT(*), COUNT(*), SUM(clamped), SUM(clamped * clamped)"
    if covariates:
        outputs += ["covariate_sum", "covariate_sum_squares", "sum_products"]
        sums += ", SUM(covariate), SUM(covariate * covariate), SUM(clamped * covariate)"
    covariate_column = ", covariate" if covariates else ""
    select = (
        f"SELECT variant, bucket, {sums}\n"
        f"FROM (SELECT variant, bucket{covariate_column}, {clamped} AS clamped FROM dense{joins}) winsorized "
        "GROUP BY variant, bucket"
    )
    return accumulate(run(query, ctx, select), ctx, outputs, increments=False)
