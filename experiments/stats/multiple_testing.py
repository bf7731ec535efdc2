"""Multiple-testing corrections of frequentist p-values across metrics × variants."""

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

MULTIPLE_TESTING_METHODS = ("holm", "bh")


def _holm(p_values: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni step-down: sorted ascending, p̃_(i) = max_{j ≤ i} (m − j + 1)·p_(j)."""
    m = len(p_values)
    order = np.argsort(p_values)
    scaled = (m - np.arange(m)) * p_values[order]
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def _benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg step-up: sorted ascending, p̃_(i) = min_{j ≥ i} m·p_(j)/j."""
    m = len(p_values)
    order = np.argsort(p_values)
    scaled = p_values[order] * (m / np.arange(1, m + 1))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    return adjusted


def adjust_p_values(p_values: Sequence[float], method: str) -> list[float]:
    """Adjusted p-values, in input order, monotone in the raw p-values and capped at 1."""
    corrections = {"holm": _holm, "bh": _benjamini_hochberg}
    if method not in corrections:
        raise ValueError(
            f"Unknown multiple-testing method {method!r}; use one of {', '.join(MULTIPLE_TESTING_METHODS)}."
        )
    raw = np.asarray(p_values, dtype=float)
    if raw.size == 0:
        return []
    if np.any((raw < 0) | (raw > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {list(p_values)}.")
    return [float(p) for p in np.minimum(corrections[method](raw), 1.0)]


def apply_multiple_testing_correction(results: Sequence[dict], method: str, *, alpha: float = 0.05) -> list[dict]:
    """Copies of metric results with every frequentist p_value corrected and `significant` = p < alpha.

    `results` are `compute_metric_result` outputs for the metrics of one experiment; Bayesian variant
    results and variants without a p_value are left as they are.
    """
    corrected = [{**result, "variant_results": [dict(v) for v in result["variant_results"]]} for result in results]
    tested = [
        variant
        for result in corrected
        for variant in result["variant_results"]
        if variant.get("method") == "frequentist" and "p_value" in variant
    ]
    for variant, p_value in zip(tested, adjust_p_values([v["p_value"] for v in tested], method), strict=True):
        variant["p_value"] = p_value
        variant["significant"] = p_value < alpha
    return corrected


ADJUSTED_P_OPEN_INTERVAL = 0.999999
Bound = float | None


def _one_sided_adjusted_bound(effect: float, bound: float, p_value_adjusted: float, *, alpha: float, direction: int):
    """The finite end of a one-sided interval (`direction` +1: greater, [L, ∞); −1: less, (−∞, U]) widened the same
    way: the implied SE is d·effect/Φ⁻¹(1 − p_adj) and the end effect − d·z_{1−α}·SE, kept when further out; open
    (−d·∞) once the adjusted test no longer supports the effect's sign (p_adj ≥ 0.5, or d·effect ≤ 0)."""
    z_adjusted = float(stats.norm.ppf(1 - p_value_adjusted))
    if z_adjusted <= 0 or direction * effect <= 0:
        return -direction * math.inf
    implied_se = direction * effect / z_adjusted
    widened = effect - direction * float(stats.norm.ppf(1 - alpha)) * implied_se
    return min(widened, bound) if direction > 0 else max(widened, bound)


def adjusted_confidence_interval(
    effect: float, ci: tuple[float, float], p_value_adjusted: float, *, alpha: float = 0.05
) -> tuple[float, float]:
    """GrowthBook's corrected CI: effect ± z_{1−α/2}·|effect/z_{1−p_adj/2}|, kept only when wider than `ci`;
    (−∞, ∞) once p_adj > 0.999999 (the adjusted test says nothing). A one-sided `ci` (one end infinite) widens its
    finite end with the one-sided z values instead."""
    if p_value_adjusted > ADJUSTED_P_OPEN_INTERVAL:
        return -math.inf, math.inf
    lower, upper = ci
    if math.isinf(upper) and not math.isinf(lower):
        return _one_sided_adjusted_bound(effect, lower, p_value_adjusted, alpha=alpha, direction=1), upper
    if math.isinf(lower) and not math.isinf(upper):
        return lower, _one_sided_adjusted_bound(effect, upper, p_value_adjusted, alpha=alpha, direction=-1)
    implied_se = abs(effect / stats.norm.ppf(1 - p_value_adjusted / 2))
    half_width = float(stats.norm.ppf(1 - alpha / 2)) * implied_se
    widened = (effect - half_width, effect + half_width)
    return widened if widened[1] - widened[0] > upper - lower else (lower, upper)


def _finite(bound: Bound, infinity: float) -> float:
    return infinity if bound is None else float(bound)


def _json_bound(bound: float) -> Bound:
    return None if math.isinf(bound) else bound


def experiment_wide_correction(
    results: Sequence[Sequence[dict]], method: str, *, alpha: float = 0.05, untested: int = 0
) -> list[list[dict]]:
    """Correct across every metric × test variant of an experiment (GrowthBook's family).

    `results` holds, per metric, its variant results: dicts with `method`, `effect`, `p_value` and
    `confidence_interval` (an open end null) for frequentist ones. Each frequentist variant with a p-value gets
    `p_value_adjusted` and `confidence_interval_adjusted` (an open end null), and `significant` = p_value_adjusted <
    alpha; others are copied as they are. `untested` more tests of the family whose p-values are unknown count as
    p = 1, which keeps Holm and Benjamini–Hochberg valid (conservative) whatever those p-values are.
    """
    corrected = [[dict(variant) for variant in metric] for metric in results]
    tested = [
        variant
        for metric in corrected
        for variant in metric
        if variant.get("method") == "frequentist" and variant.get("p_value") is not None
    ]
    adjusted_p_values = adjust_p_values([v["p_value"] for v in tested] + [1.0] * untested, method)
    for variant, adjusted in zip(tested, adjusted_p_values[: len(tested)], strict=True):
        lower, upper = variant["confidence_interval"]
        interval = (_finite(lower, -math.inf), _finite(upper, math.inf))
        variant["p_value_adjusted"] = adjusted
        variant["confidence_interval_adjusted"] = [
            _json_bound(bound)
            for bound in adjusted_confidence_interval(variant["effect"], interval, adjusted, alpha=alpha)
        ]
        variant["significant"] = adjusted < alpha
    return corrected
