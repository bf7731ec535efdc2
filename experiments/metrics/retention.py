"""Retention metrics: of the exposed units that did the start event, the share that did the completion event
within [window_start, window_end] units after it (PostHog treats this as a ratio: retained / started).

Day windows compare local calendar days and hour windows whole clock hours, as PostHog does; other units compare
timestamps. With `last_seen` the start moves to the unit's latest start event as of each boundary, so a unit's state
is rebuilt at every bucket with a start and at the bucket its completion arrives.
"""

import datetime as dt

from .filters import source_sql
from .incremental import Increments, exit_rows, run_increments
from .query import EXPOSURE_COLUMNS, Query, QueryContext, add_exposures, add_metric_rows
from .spec import TIME_UNIT_SECONDS, MetricSpec, RetentionMetric

COLUMNS = "unit, variant, exit_bucket, ts, uuid, bucket, day"


def _calendar_day(ctx: QueryContext) -> str:
    if not ctx.calendar_boundaries:
        return "0"
    return ctx.dialect.bucket("m.timestamp", ctx.calendar_boundaries)


def _window_condition(ctx: QueryContext, retention: RetentionMetric) -> str:
    start, end = ctx.params(retention.window_start), ctx.params(retention.window_end)
    if retention.window_unit == "day":
        return f"c.day - st.day BETWEEN {start} AND {end}"
    if retention.window_unit == "hour":
        return f"{ctx.dialect.hour_difference('c.ts', 'st.ts')} BETWEEN {start} AND {end}"
    seconds = TIME_UNIT_SECONDS[retention.window_unit]
    dialect = ctx.dialect
    completion = dialect.timestamp_order("c.ts")
    return (
        f"{completion} >= {dialect.shifted('st.ts', dt.timedelta(seconds=retention.window_start * seconds))} AND "
        f"{completion} <= {dialect.shifted('st.ts', dt.timedelta(seconds=retention.window_end * seconds))}"
    )


def _add_starts(query: Query, ctx: QueryContext, retention: RetentionMetric, window: dt.timedelta | None) -> None:
    in_window = ""
    if window is not None:
        dialect = ctx.dialect
        in_window = f" AND {dialect.timestamp_order('ts')} < {dialect.shifted('exposure_ts', window)}"
    candidates = f"SELECT {COLUMNS} FROM metric_rows WHERE is_start = 1{in_window}"
    if retention.last_seen:
        query.add(
            "starts",
            f"SELECT {COLUMNS}, {ctx.dialect.lead('bucket')} OVER (PARTITION BY unit ORDER BY bucket) AS next_bucket\n"
            f"FROM (SELECT {COLUMNS}, ROW_NUMBER() OVER (PARTITION BY unit, bucket ORDER BY ts DESC, uuid DESC) AS "
            f"rank FROM ({candidates}) candidates) ranked WHERE rank = 1",
        )
    else:
        query.add(
            "starts",
            f"SELECT {COLUMNS}, {ctx.dialect.null_integer()} AS next_bucket\n"
            f"FROM (SELECT {COLUMNS}, ROW_NUMBER() OVER (PARTITION BY unit ORDER BY ts, uuid) AS rank "
            f"FROM ({candidates}) candidates) ranked WHERE rank = 1",
        )


def retention_statistics(ctx: QueryContext, spec: MetricSpec) -> list[dict]:
    retention: RetentionMetric = spec.definition
    query = Query()
    add_exposures(query, ctx)
    add_metric_rows(
        query,
        ctx,
        columns=EXPOSURE_COLUMNS
        | {
            "exposure_ts": "x.exposure_ts",
            "bucket": ctx.bucket("m.timestamp"),
            "is_start": f"CASE WHEN {source_sql(ctx.dialect, 'm', retention.start)} THEN 1 ELSE 0 END",
            "is_completion": f"CASE WHEN {source_sql(ctx.dialect, 'm', retention.completion)} THEN 1 ELSE 0 END",
            "uuid": ctx.dialect.uuid_order("m.uuid"),
            "day": _calendar_day(ctx),
        },
        sources=[retention.start, retention.completion],
        conversion_window=None,
        lookback=None,
    )
    _add_starts(query, ctx, retention, spec.conversion_window)
    # A completion is another event than the start occurrence, at or after it, inside the retention window.
    query.add(
        "retained_starts",
        "SELECT st.unit, st.variant, st.exit_bucket, st.bucket, st.next_bucket, MIN(c.bucket) AS completion_bucket\n"
        "FROM starts st LEFT JOIN metric_rows c ON c.unit = st.unit AND c.is_completion = 1 AND c.ts >= st.ts\n"
        f"  AND c.uuid <> st.uuid AND {_window_condition(ctx, retention)}\n"
        "GROUP BY st.unit, st.variant, st.exit_bucket, st.bucket, st.next_bucket",
    )
    query.add(
        "change_rows",
        "SELECT unit, variant, exit_bucket, bucket, CASE WHEN completion_bucket = bucket THEN 1 ELSE 0 END AS retained "
        "FROM retained_starts\nUNION ALL\n"
        "SELECT unit, variant, exit_bucket, completion_bucket AS bucket, 1 AS retained FROM retained_starts "
        "WHERE completion_bucket > bucket AND (next_bucket IS NULL OR completion_bucket < next_bucket)\nUNION ALL\n"
        + exit_rows(ctx, ["retained"]),
    )
    increments = Increments(
        # Each change row holds the unit's whole state, so no aggregation over earlier rows is needed.
        running={"is_retained": "COALESCE(retained, 0)"},
        contributions={
            "number_of_samples": "1",
            "sum": "is_retained",
            "sum_squares": "is_retained",
            "denominator_sum": "1",
            "denominator_sum_squares": "1",
            "numerator_denominator_sum_product": "is_retained",
        },
    )
    return run_increments(query, ctx, increments, list(increments.contributions))
