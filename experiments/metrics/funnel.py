"""Funnel metrics: the exposure is step 0; a unit converts when it completes every step within the window.

Ordered funnels take each step's first event after the previous step's (strictly later); unordered funnels count
the steps done in any order. A unit's state is the number of steps reached, which only grows over time, so each
reached step is a change row in the bucket it was reached.
"""

from .filters import source_sql
from .incremental import Increments, exit_rows, run_increments
from .mean import add_covariates
from .query import Query, QueryContext, add_exposures, add_metric_rows
from .spec import FunnelMetric, MetricSpec


def _ordered_steps(query: Query, step_count: int) -> list[str]:
    """Step i's time: the unit's first step-i event strictly after its step i−1 time."""
    steps = []
    for index in range(1, step_count + 1):
        if index == 1:
            body = "SELECT unit, MIN(ts) AS ts FROM metric_rows WHERE s1 = 1 AND is_pre = 0 GROUP BY unit"
        else:
            body = (
                f"SELECT r.unit, MIN(r.ts) AS ts FROM metric_rows r JOIN step_{index - 1} p "
                f"ON p.unit = r.unit AND r.ts > p.ts WHERE r.s{index} = 1 AND r.is_pre = 0 GROUP BY r.unit"
            )
        query.add(f"step_{index}", body)
        steps.append(f"SELECT unit, ts, {index} AS step FROM step_{index}")
    return steps


def _unordered_steps(step_count: int) -> list[str]:
    return [
        f"SELECT unit, MIN(ts) AS ts, 1 AS step FROM metric_rows WHERE s{index} = 1 AND is_pre = 0 GROUP BY unit"
        for index in range(1, step_count + 1)
    ]


def funnel_statistics(ctx: QueryContext, spec: MetricSpec) -> list[dict]:
    funnel: FunnelMetric = spec.definition
    step_count = len(funnel.steps)
    query = Query()
    add_exposures(query, ctx)
    add_metric_rows(
        query,
        ctx,
        columns={
            f"s{index}": f"CASE WHEN {source_sql(ctx.dialect, 'm', step)} THEN 1 ELSE 0 END"
            for index, step in enumerate(funnel.steps, start=1)
        },
        sources=list(funnel.steps),
        conversion_window=spec.conversion_window,
        lookback=spec.cuped_lookback,
    )
    # CUPED covariate, as PostHog: 1 when the unit did the last step's event in the pre-exposure window.
    covariates = add_covariates(query, {"covariate": f"MAX(s{step_count})"}) if spec.cuped_lookback else None
    step_rows = _ordered_steps(query, step_count) if funnel.ordered else _unordered_steps(step_count)
    query.add("reached_steps", "\nUNION ALL\n".join(step_rows))
    query.add(
        "change_rows",
        f"SELECT s.unit, x.variant, x.exit_bucket, {ctx.bucket('s.ts')} AS bucket, s.step\n"
        f"FROM reached_steps s JOIN exposures x ON x.unit = s.unit\nUNION ALL\n{exit_rows(ctx, ['step'])}",
    )
    reached = "COALESCE(reached, 0)"
    converted = f"CASE WHEN {reached} >= {step_count} THEN 1 ELSE 0 END"
    increments = Increments(
        running={"reached": f"{'MAX' if funnel.ordered else 'SUM'}(step) OVER w"},
        contributions={"sum": converted, "sum_squares": converted}
        | {f"step_{index}": f"CASE WHEN {reached} >= {index} THEN 1 ELSE 0 END" for index in range(1, step_count + 1)},
        constants={"number_of_samples": "1"},
        covariates=covariates,
    )
    if covariates:
        increments.contributions["sum_products"] = f"{converted} * covariate"
        increments.constants |= {"covariate_sum": "covariate", "covariate_sum_squares": "covariate * covariate"}
    outputs = [*increments.constants, *increments.contributions]
    return run_increments(query, ctx, increments, outputs)
