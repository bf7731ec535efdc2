"""Multi-armed bandit weights: Thompson sampling over each arm's posterior, with a floor per arm.

GrowthBook's method: each arm's mean gets a N(0, 1e4) prior, so its posterior has precision 1e−4 + n/σ² and mean
(n/σ²)ȳ/precision. Draws from the posteriors give each arm's probability of being best (or, with top-two, of being
first or second); the weights are those probabilities with a floor f per arm: p_i = f + (1 − Kf)·w_i/Σw.
`flag_percentages` turns weights into integer rollout percentages that sum to 100.

`period_weighted_row` analyses a metric of a bandit whose weights changed: each period (between reweights) is
weighted by its share of all units, w_p = N_p/N, so traffic drift does not confound time trends.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

PRIOR_PRECISION = 1e-4
DEFAULT_DRAWS = 10_000
DEFAULT_MIN_WEIGHT = 0.01
MIN_UNITS_PER_ARM = 100
NOT_ENOUGH_UNITS = "total sample size must be at least 100 per variation"


@dataclass(frozen=True)
class BanditArm:
    """One arm's decision-metric summary: units, mean and per-unit variance."""

    n: int
    mean: float
    variance: float


@dataclass(frozen=True)
class BanditWeights:
    """`weights` sum to 1; `best_arm_probabilities` are the raw Thompson shares; `update_message` says why the
    weights were not updated (then `weights` is None)."""

    best_arm_probabilities: list[float] | None
    weights: list[float] | None
    seed: int
    update_message: str | None = None


def _posterior(arm: BanditArm) -> tuple[float, float]:
    data_precision = arm.n / arm.variance if arm.variance > 0 else arm.n / 1e-12
    precision = PRIOR_PRECISION + data_precision
    return data_precision * arm.mean / precision, 1 / precision


def floored_weights(shares: Sequence[float], min_weight: float = DEFAULT_MIN_WEIGHT) -> list[float]:
    """p_i = f + (1 − Kf)·w_i/Σw; uniform when Kf ≥ 1 or every share is 0."""
    count = len(shares)
    total = float(sum(shares))
    if count * min_weight >= 1 or total <= 0:
        return [1 / count] * count
    return [min_weight + (1 - count * min_weight) * share / total for share in shares]


def bandit_weights(
    arms: Sequence[BanditArm],
    *,
    seed: int,
    draws: int = DEFAULT_DRAWS,
    top_two: bool = False,
    min_weight: float = DEFAULT_MIN_WEIGHT,
    inverse: bool = False,
) -> BanditWeights:
    """Thompson-sampling weights for `arms` (in variant order); `inverse` when lower is better."""
    if len(arms) < 2:
        raise ValueError("A bandit needs at least two arms.")
    if any(arm.n < MIN_UNITS_PER_ARM for arm in arms):
        return BanditWeights(None, None, seed, NOT_ENOUGH_UNITS)
    means, variances = zip(*(_posterior(arm) for arm in arms), strict=True)
    rng = np.random.default_rng(seed)
    samples = rng.normal(np.array(means), np.sqrt(np.array(variances)), size=(draws, len(arms)))
    ranking = np.argsort(samples if inverse else -samples, axis=1)
    best = np.bincount(ranking[:, 0], minlength=len(arms)) / draws
    shares = best
    if top_two:
        shares = (np.bincount(ranking[:, 0], minlength=len(arms)) + np.bincount(ranking[:, 1], minlength=len(arms))) / (
            2 * draws
        )
    return BanditWeights([float(p) for p in best], floored_weights([float(s) for s in shares], min_weight), seed)


def flag_percentages(weights: Sequence[float]) -> list[int]:
    """Integer percentages summing to 100: floor 100p, give the missing points to the largest remainders (the
    earlier variant on ties), then lift any 0 to 1, taken from the largest."""
    scaled = [100 * weight for weight in weights]
    percentages = [int(np.floor(value)) for value in scaled]
    missing = 100 - sum(percentages)
    by_remainder = sorted(range(len(scaled)), key=lambda index: (-(scaled[index] - percentages[index]), index))
    for index in by_remainder[:missing]:
        percentages[index] += 1
    for index, value in enumerate(percentages):
        if value == 0:
            percentages[index] = 1
            largest = max(range(len(percentages)), key=lambda i: (percentages[i], -i))
            percentages[largest] -= 1
    return percentages


# First moments (per-unit totals of a component) and the second moments built from two of them.
FIRST_MOMENTS = ("sum", "denominator_sum", "covariate_sum", "covariate_denominator_sum")
SECOND_MOMENTS = {
    "sum_squares": ("sum", "sum"),
    "denominator_sum_squares": ("denominator_sum", "denominator_sum"),
    "numerator_denominator_sum_product": ("sum", "denominator_sum"),
    "covariate_sum_squares": ("covariate_sum", "covariate_sum"),
    "sum_products": ("sum", "covariate_sum"),
    # A ratio's pre-exposure denominator and its products (ratio CUPED).
    "covariate_denominator_sum_squares": ("covariate_denominator_sum", "covariate_denominator_sum"),
    "denominator_covariate_denominator_sum_product": ("denominator_sum", "covariate_denominator_sum"),
    "covariate_numerator_denominator_sum_product": ("covariate_sum", "covariate_denominator_sum"),
    "numerator_covariate_denominator_sum_product": ("sum", "covariate_denominator_sum"),
    "covariate_numerator_denominator_post_sum_product": ("covariate_sum", "denominator_sum"),
}


def period_weighted_row(rows: Sequence[Mapping], period_units: Sequence[float]) -> dict:
    """One arm's statistics over periods, as pseudo-sums that the ordinary statistics read.

    `rows[p]` is the arm's row among the units first exposed in period p (`number_of_samples`, `sum`,
    `sum_squares`, optionally the ratio and covariate fields and `step_counts`); `period_units[p]` is N_p, the
    units of every arm in that period. Per component x: x̄ = Σ_p w_p S_xp/n_p, and per pair (x, y)
    Cov(x̄, ȳ) = Σ_p w_p² c_xyp/n_p with c the unbiased sample covariance (0 for a period of one unit). Periods
    where the arm has no units are left out and the remaining w_p rescaled to sum to 1. With n = Σ_p n_p the row
    stores S_x = n·x̄ and S_xy = n((n − 1)·Cov + x̄ȳ): then (S_xy − S_x·S_y/n)/(n − 1) = n·Cov, so the ordinary
    variance of the mean (per-unit variance / n) is exactly Cov(x̄, ȳ).
    """
    if len(rows) != len(period_units):
        raise ValueError("rows and period_units need one entry per period.")
    present = [(row, units) for row, units in zip(rows, period_units, strict=True) if row["number_of_samples"] > 0]
    n = sum(row["number_of_samples"] for row, _units in present)
    firsts = [field for field in FIRST_MOMENTS if all(field in row for row in rows)]
    seconds = [field for field, pair in SECOND_MOMENTS.items() if all(part in firsts for part in pair)]
    weighted = {"number_of_samples": n, **dict.fromkeys([*firsts, *seconds], 0.0)}
    steps = len(rows[0].get("step_counts") or []) if rows else 0
    if steps:
        weighted["step_counts"] = [0.0] * steps
    total_units = sum(units for _row, units in present)
    if n == 0 or total_units <= 0:
        return weighted
    means = dict.fromkeys(firsts, 0.0)
    covariances = dict.fromkeys(seconds, 0.0)
    for row, units in present:
        weight, count = units / total_units, row["number_of_samples"]
        for field in firsts:
            means[field] += weight * row[field] / count
        for field in seconds:
            x, y = SECOND_MOMENTS[field]
            if count > 1:
                covariance = (row[field] - row[x] * row[y] / count) / (count - 1)
                covariances[field] += weight**2 * covariance / count
        for index in range(steps):
            weighted["step_counts"][index] += weight * row["step_counts"][index] / count * n
    for field in firsts:
        weighted[field] = n * means[field]
    for field in seconds:
        x, y = SECOND_MOMENTS[field]
        weighted[field] = n * ((n - 1) * covariances[field] + means[x] * means[y])
    return weighted
