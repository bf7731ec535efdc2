"""Ratio metrics: per unit a numerator and a denominator value, each from its own source and math.

With CUPED the same scan brings each unit's pre-exposure numerator and denominator (`covariate`,
`covariate_denominator`), and the sums gain every cross product ratio CUPED needs (experiments.stats.ratio_cuped).
"""

from .incremental import Increments, exit_rows, run_increments
from .mean import add_covariates
from .query import EXPOSURE_COLUMNS, Query, QueryContext, add_exposures, add_metric_rows
from .spec import MetricSpec, RatioMetric
from .values import SourceValue, delta_columns


def ratio_statistics(ctx: QueryContext, spec: MetricSpec) -> list[dict]:
    ratio: RatioMetric = spec.definition
    values = [SourceValue("num", ratio.numerator), SourceValue("den", ratio.denominator)]
    query = Query()
    add_exposures(query, ctx)
    add_metric_rows(
        query,
        ctx,
        columns=EXPOSURE_COLUMNS
        | {"bucket": ctx.bucket("m.timestamp")}
        | {name: sql for value in values for name, sql in value.columns(ctx.dialect).items()},
        sources=[value.source for value in values],
        conversion_window=spec.conversion_window,
        lookback=spec.cuped_lookback,
    )
    columns = delta_columns(values)
    branches = [value.deltas("metric_rows", columns) for value in values]
    query.add("change_rows", "\nUNION ALL\n".join([*branches, exit_rows(ctx, columns)]))
    numerator, denominator = (value.state() for value in values)
    increments = Increments(
        running={name: sql for value in values for name, sql in value.running("w").items()},
        contributions={
            "sum": numerator,
            "sum_squares": f"{numerator} * {numerator}",
            "denominator_sum": denominator,
            "denominator_sum_squares": f"{denominator} * {denominator}",
            "numerator_denominator_sum_product": f"{numerator} * {denominator}",
        },
        constants={"number_of_samples": "1"},
    )
    if spec.cuped_lookback:
        increments.covariates = add_covariates(
            query, {"covariate": values[0].covariate(), "covariate_denominator": values[1].covariate()}
        )
        increments.covariate_columns = ("covariate", "covariate_denominator")
        increments.contributions |= {
            "sum_products": f"{numerator} * covariate",
            "numerator_covariate_denominator_sum_product": f"{numerator} * covariate_denominator",
            "covariate_numerator_denominator_post_sum_product": f"covariate * {denominator}",
            "denominator_covariate_denominator_sum_product": f"{denominator} * covariate_denominator",
        }
        increments.constants |= {
            "covariate_sum": "covariate",
            "covariate_sum_squares": "covariate * covariate",
            "covariate_denominator_sum": "covariate_denominator",
            "covariate_denominator_sum_squares": "covariate_denominator * covariate_denominator",
            "covariate_numerator_denominator_sum_product": "covariate * covariate_denominator",
        }
    outputs = [*increments.constants, *increments.contributions]
    return run_increments(query, ctx, increments, outputs)
