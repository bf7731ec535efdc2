"""Health checks: sample ratio mismatch and per-variant validation failures."""

from collections.abc import Mapping, Sequence

from scipy import stats

from .quantile import quantile_inference_possible

NOT_ENOUGH_EXPOSURES = "not-enough-exposures"
NOT_ENOUGH_METRIC_DATA = "not-enough-metric-data"
BASELINE_MEAN_IS_ZERO = "baseline-mean-is-zero"

MIN_EXPOSURES = 50
MIN_METRIC_DATA = 5
SRM_MIN_EXPOSURES = 100
SRM_P_VALUE_THRESHOLD = 0.001

COUNT_METRIC_TYPES = frozenset({"funnel", "retention"})
RATIO_METRIC_TYPES = frozenset({"ratio", "retention"})


def srm_p_value(counts: Sequence[float], weights: Sequence[float]) -> float:
    """Chi-square goodness-of-fit p-value of exposure counts against the (renormalised) weights.

    With no exposures at all there is no evidence of a mismatch, so the p-value is 1.
    """
    if len(counts) != len(weights):
        raise ValueError(f"Got {len(counts)} counts but {len(weights)} weights; pass one weight per count.")
    if len(counts) < 2:
        raise ValueError("A sample ratio mismatch check needs at least two variants.")
    if any(weight <= 0 for weight in weights):
        raise ValueError(f"Every weight must be positive, got {list(weights)}.")
    if any(count < 0 for count in counts):
        raise ValueError(f"Counts must not be negative, got {list(counts)}.")
    total = sum(counts)
    if total == 0:
        return 1.0
    total_weight = sum(weights)
    expected = [total * weight / total_weight for weight in weights]
    return float(stats.chisquare(counts, expected).pvalue)


def srm_check(counts_by_variant: Mapping[str, float], weights_by_variant: Mapping[str, float]) -> dict:
    """SRM health block over the variants in `weights_by_variant` (a variant never seen counts 0)."""
    counts = [counts_by_variant.get(key, 0) for key in weights_by_variant]
    p_value = srm_p_value(counts, list(weights_by_variant.values()))
    return {
        "p_value": p_value,
        "mismatch": p_value < SRM_P_VALUE_THRESHOLD,
        "sufficient_data": sum(counts) >= SRM_MIN_EXPOSURES,
    }


def _quantile_failures(variant: Mapping, *, is_baseline: bool) -> list[str]:
    """Too few values for the quantile's bounds (no n*, or GrowthBook's tail rule; at event level, fewer than 2
    units with events), and a zero baseline quantile."""
    failures = []
    possible = variant["quantile_nstar"] is not None and quantile_inference_possible(
        n=variant["quantile_n"],
        nu=variant["quantile_level"],
        lower=variant["quantile_lower"],
        upper=variant["quantile_upper"],
    )
    if "n_clusters" in variant and (variant["n_clusters"] < 2 or variant["denominator_sum"] <= 0):
        possible = False
    if not possible:
        failures.append(NOT_ENOUGH_METRIC_DATA)
    if is_baseline and variant["quantile"] == 0:
        failures.append(BASELINE_MEAN_IS_ZERO)
    return failures


def validation_failures(variant: Mapping, *, metric_type: str, is_baseline: bool) -> list[str]:
    """Reasons a variant's row is too thin to test, in PostHog's failure codes.

    Ratio-type rows with a zero denominator also count as `not-enough-metric-data`: their mean is undefined.
    """
    failures = []
    if variant["number_of_samples"] < MIN_EXPOSURES:
        failures.append(NOT_ENOUGH_EXPOSURES)
    if metric_type == "quantile":
        return failures + _quantile_failures(variant, is_baseline=is_baseline)
    thin_count = metric_type in COUNT_METRIC_TYPES and variant["sum"] < MIN_METRIC_DATA
    no_denominator = metric_type in RATIO_METRIC_TYPES and variant.get("denominator_sum") == 0
    if thin_count or no_denominator:
        failures.append(NOT_ENOUGH_METRIC_DATA)
    if is_baseline and variant["sum"] == 0:
        failures.append(BASELINE_MEAN_IS_ZERO)
    return failures
