"""Mean metrics: per unit, a count, sum, average, minimum, maximum or distinct count of its events."""

from .incremental import Increments, exit_rows, run_increments
from .query import EXPOSURE_COLUMNS, Query, QueryContext, add_exposures, add_metric_rows
from .spec import MetricSpec
from .values import SourceValue
from .winsorized import winsorized_statistics


def add_covariates(query: Query, columns: dict[str, str]) -> str:
    """`covariates(unit, *columns)`: each unit's CUPED covariates (aggregates over its pre-exposure rows)."""
    selected = ", ".join(f"{sql} AS {name}" for name, sql in columns.items())
    return query.add("covariates", f"SELECT unit, {selected} FROM metric_rows WHERE is_pre = 1 GROUP BY unit")


def mean_statistics(ctx: QueryContext, spec: MetricSpec) -> list[dict]:
    value = SourceValue("v", spec.definition.source)
    query = Query()
    add_exposures(query, ctx)
    add_metric_rows(
        query,
        ctx,
        columns=EXPOSURE_COLUMNS | {"bucket": ctx.bucket("m.timestamp")} | value.columns(ctx.dialect),
        sources=[value.source],
        conversion_window=spec.conversion_window,
        lookback=spec.cuped_lookback,
    )
    covariates = add_covariates(query, {"covariate": value.covariate()}) if spec.cuped_lookback else None
    if spec.definition.winsorization is not None:
        return winsorized_statistics(query, ctx, value, spec.definition.winsorization, covariates=covariates)
    columns = value.delta_columns()
    query.add("change_rows", f"{value.deltas('metric_rows', columns)}\nUNION ALL\n{exit_rows(ctx, columns)}")
    state = value.state()
    increments = Increments(
        running=value.running("w"),
        contributions={"sum": state, "sum_squares": f"{state} * {state}"},
        constants={"number_of_samples": "1"},
        covariates=covariates,
    )
    if covariates:
        increments.contributions["sum_products"] = f"{state} * covariate"
        increments.constants |= {"covariate_sum": "covariate", "covariate_sum_squares": "covariate * covariate"}
    outputs = [*increments.constants, *increments.contributions]
    return run_increments(query, ctx, increments, outputs)
