"""Multi-armed bandit weights: Thompson sampling over each arm's posterior, with a floor per arm.

GrowthBook's method: each arm's mean gets a N(0, 1e4) prior, so its posterior has precision 1e−4 + n/σ² and mean
(n/σ²)ȳ/precision. Draws from the posteriors give each arm's probability of being best (or, with top-two, of being
first or second); the weights are those probabilities with a floor f per arm: p_i = f + (1 − Kf)·w_i/Σw.
`flag_percentages` turns weights into integer rollout percentages that sum to 100.
"""

from collections.abc import Sequence
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
