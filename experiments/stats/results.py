"""Assemble one metric's result in PostHog's shape from the per-variant aggregate rows."""

from collections.abc import Mapping, Sequence

from .config import MetricPrior, StatsConfig
from .cuped import CupedStatistic, cuped_adjust
from .effects import Comparison, compare
from .health import RATIO_METRIC_TYPES, validation_failures
from .methods import STATS_METHODS
from .quantile import QuantileClusteredStatistic, QuantileStatistic
from .ratio_cuped import RatioCupedStatistic, ratio_cuped_comparison
from .statistics import Proportion, Ratio, SampleMean, Statistic

METRIC_TYPES = ("mean", "funnel", "ratio", "retention", "quantile")
CUPED_METRIC_TYPES = frozenset({"mean", "funnel"})
REQUIRED_FIELDS = ("key", "number_of_samples", "sum", "sum_squares")
RATIO_FIELDS = ("denominator_sum", "denominator_sum_squares", "numerator_denominator_sum_product")
COVARIATE_FIELDS = ("covariate_sum", "covariate_sum_squares", "sum_products")
# A ratio's pre-exposure numerator is the covariate above; these add its pre-exposure denominator and the products.
RATIO_DENOMINATOR_COVARIATE_FIELDS = (
    "covariate_denominator_sum",
    "covariate_denominator_sum_squares",
    "denominator_covariate_denominator_sum_product",
    "covariate_numerator_denominator_sum_product",
    "numerator_covariate_denominator_sum_product",
    "covariate_numerator_denominator_post_sum_product",
)
RATIO_COVARIATE_FIELDS = (*COVARIATE_FIELDS, *RATIO_DENOMINATOR_COVARIATE_FIELDS)
QUANTILE_FIELDS = ("quantile_level", "quantile_n", "quantile", "quantile_lower", "quantile_upper", "quantile_nstar")
BASE_FIELDS = (*REQUIRED_FIELDS, *RATIO_FIELDS, "step_counts", *QUANTILE_FIELDS, "n_clusters")


def statistic_for(variant: Mapping, metric_type: str) -> Statistic:
    """mean → SampleMean, funnel → Proportion (successes = sum), ratio and retention → Ratio, quantile →
    QuantileStatistic (unit level), or QuantileClusteredStatistic when the row carries `n_clusters` (event level)."""
    n = variant["number_of_samples"]
    if metric_type == "quantile":
        quantile = {
            "n": variant["quantile_n"],
            "nu": variant["quantile_level"],
            "quantile": variant["quantile"],
            "lower": variant["quantile_lower"],
            "upper": variant["quantile_upper"],
            "nstar": variant["quantile_nstar"],
        }
        if "n_clusters" not in variant:
            return QuantileStatistic(**quantile)
        return QuantileClusteredStatistic(
            **quantile,
            n_clusters=variant["n_clusters"],
            sum=variant["sum"],
            sum_squares=variant["sum_squares"],
            denominator_sum=variant["denominator_sum"],
            denominator_sum_squares=variant["denominator_sum_squares"],
            numerator_denominator_sum_product=variant["numerator_denominator_sum_product"],
        )
    if metric_type == "funnel":
        return Proportion(n=n, successes=variant["sum"])
    if metric_type == "mean":
        return SampleMean(n=n, sum=variant["sum"], sum_squares=variant["sum_squares"])
    return Ratio(
        n=n,
        numerator_sum=variant["sum"],
        numerator_sum_squares=variant["sum_squares"],
        denominator_sum=variant["denominator_sum"],
        denominator_sum_squares=variant["denominator_sum_squares"],
        numerator_denominator_sum_product=variant["numerator_denominator_sum_product"],
    )


def _cuped_statistic(variant: Mapping) -> CupedStatistic:
    return CupedStatistic(
        n=variant["number_of_samples"],
        sum=variant["sum"],
        sum_squares=variant["sum_squares"],
        covariate_sum=variant["covariate_sum"],
        covariate_sum_squares=variant["covariate_sum_squares"],
        sum_products=variant["sum_products"],
    )


def _ratio_cuped_statistic(variant: Mapping) -> RatioCupedStatistic:
    fields = ("sum", "sum_squares", *RATIO_FIELDS, *RATIO_COVARIATE_FIELDS)
    return RatioCupedStatistic(n=variant["number_of_samples"], **{field: variant[field] for field in fields})


def _has(fields: tuple[str, ...], *rows: Mapping) -> bool:
    return all(field in row for row in rows for field in fields)


def _comparison(variant: Mapping, baseline: Mapping, metric_type: str, *, cuped: bool, relative: bool) -> Comparison:
    """Treatment against control, CUPED-adjusted when asked for and both rows carry covariates. A ratio is adjusted
    by its pre-exposure ratio, which needs pre-exposure denominator events in both arms (else the plain ratio)."""
    if cuped and metric_type in CUPED_METRIC_TYPES and _has(COVARIATE_FIELDS, variant, baseline):
        treatment, control, _theta = cuped_adjust(_cuped_statistic(variant), _cuped_statistic(baseline))
        return compare(treatment, control, relative=relative)
    if (
        cuped
        and metric_type == "ratio"
        and _has(RATIO_COVARIATE_FIELDS, variant, baseline)
        and variant["covariate_denominator_sum"]
        and baseline["covariate_denominator_sum"]
    ):
        return ratio_cuped_comparison(
            _ratio_cuped_statistic(variant), _ratio_cuped_statistic(baseline), relative=relative
        )
    return compare(statistic_for(variant, metric_type), statistic_for(baseline, metric_type), relative=relative)


def _base_fields(variant: Mapping, failures: list[str]) -> dict:
    return {field: variant[field] for field in BASE_FIELDS if field in variant} | {"validation_failures": failures}


def _check_inputs(variants: Sequence[Mapping], metric_type: str, baseline_key: str) -> None:
    if metric_type not in METRIC_TYPES:
        raise ValueError(f"Unknown metric_type {metric_type!r}; use one of {', '.join(METRIC_TYPES)}.")
    if metric_type == "quantile":
        required = ("key", "number_of_samples", *QUANTILE_FIELDS)
    else:
        required = REQUIRED_FIELDS + (RATIO_FIELDS if metric_type in RATIO_METRIC_TYPES else ())
    for variant in variants:
        missing = [field for field in required if field not in variant]
        if missing:
            raise ValueError(f"Variant {variant.get('key')!r} is missing {', '.join(missing)}.")
    baseline_count = sum(variant["key"] == baseline_key for variant in variants)
    if baseline_count != 1:
        raise ValueError(f"Expected exactly one variant keyed {baseline_key!r}, found {baseline_count}.")


def compute_metric_result(
    variants: Sequence[Mapping],
    *,
    metric_type: str,
    stats_config: Mapping | None,
    baseline_key: str = "control",
    cuped: bool | None = None,
    metric_prior: MetricPrior | None = None,
) -> dict:
    """`{"baseline": {...}, "variant_results": [...]}` for one metric, variants in input order.

    Every row keeps its base fields plus `validation_failures`; only a variant without failures, against a
    baseline without failures, gets the inferential fields of the configured method. `cuped` overrides
    `stats_config["cuped"]["enabled"]`; it applies to mean, funnel and ratio metrics whose rows carry covariates
    (`COVARIATE_FIELDS`, for a ratio `RATIO_COVARIATE_FIELDS`). `metric_prior`, the metric's own prior, replaces
    `stats_config.bayesian.prior`.
    """
    _check_inputs(variants, metric_type, baseline_key)
    config = StatsConfig.from_dict(stats_config).for_metric(metric_prior)
    use_cuped = config.cuped if cuped is None else cuped
    baseline = next(variant for variant in variants if variant["key"] == baseline_key)
    baseline_failures = validation_failures(baseline, metric_type=metric_type, is_baseline=True)
    variant_results = []
    for variant in variants:
        if variant is baseline:
            continue
        failures = validation_failures(variant, metric_type=metric_type, is_baseline=False)
        variant_result = _base_fields(variant, failures)
        if not failures and not baseline_failures:
            comparison = _comparison(variant, baseline, metric_type, cuped=use_cuped, relative=config.relative)
            variant_result |= STATS_METHODS[config.method](comparison, config)
        variant_results.append(variant_result)
    return {"baseline": _base_fields(baseline, baseline_failures), "variant_results": variant_results}
