"""Mid-experiment power: how many more units (and days) until a running experiment can detect its target effect.

GrowthBook's method for relative effects: with the current effect's variance σ̂²_Δ, s·n more units shrink it to
σ̂²_Δ/(1 + s). Power at s is 1 − Φ((m√v − MDE)/√v) + Φ(−(m√v + MDE)/√v), m = Φ⁻¹(1 − α/2T) with T the number of
corrected comparisons; s is found by doubling, then bisection to a relative precision of 1e−9 (finer than
GrowthBook's power tolerance, so the units still needed are exact to the unit).
"""

import math
from dataclasses import dataclass

from scipy import stats

DEFAULT_TARGET_MDE = 0.1
DEFAULT_TARGET_POWER = 0.8
MAX_DOUBLINGS = 27
SCALE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class MidExperimentPower:
    """`scaling_factor` s: s × the units so far are still needed (0 when already powered); `upper_bound_achieved`
    is False when even the largest s searched falls short."""

    power: float
    target_power: float
    scaling_factor: float
    additional_units: int
    days_needed: int | None
    upper_bound_achieved: bool


def power_at(*, effect_variance: float, target_mde: float, alpha: float, comparisons: int = 1, scale: float = 0.0):
    """Two-sided power to detect `target_mde` once the variance has shrunk to effect_variance/(1 + scale)."""
    variance = effect_variance / (1 + scale)
    sd = math.sqrt(variance)
    critical = float(stats.norm.ppf(1 - alpha / (2 * comparisons)))
    return float(
        1 - stats.norm.cdf((critical * sd - target_mde) / sd) + stats.norm.cdf(-(critical * sd + target_mde) / sd)
    )


def mid_experiment_power(
    *,
    effect_variance: float,
    units_so_far: int,
    daily_units: float | None,
    target_mde: float = DEFAULT_TARGET_MDE,
    alpha: float = 0.05,
    goal_metrics: int = 1,
    variants: int = 2,
    corrected: bool = False,
) -> MidExperimentPower:
    """Power now and the units and days still needed for power 0.8^(1/goal_metrics).

    `effect_variance` is SE² of the current relative effect, `units_so_far` the pairwise units (treatment and
    control) behind it, `daily_units` the pair's mean daily exposures lately (None: days unknown).
    """
    if effect_variance <= 0 or units_so_far <= 0 or target_mde <= 0 or not 0 < alpha < 1:
        raise ValueError("effect_variance, units_so_far and target_mde must be positive and alpha in (0, 1).")
    comparisons = (variants - 1) * goal_metrics if corrected else 1
    target = DEFAULT_TARGET_POWER ** (1 / goal_metrics)

    def power(scale: float) -> float:
        return power_at(
            effect_variance=effect_variance, target_mde=target_mde, alpha=alpha, comparisons=comparisons, scale=scale
        )

    now = power(0.0)
    if now >= target:
        return MidExperimentPower(now, target, 0.0, 0, 0, True)
    high = 1.0
    for _ in range(MAX_DOUBLINGS):
        if power(high) >= target:
            break
        high *= 2
    else:
        return MidExperimentPower(now, target, high, math.ceil(high * units_so_far), None, False)
    low = 0.0
    while high - low >= SCALE_TOLERANCE * high:
        middle = (low + high) / 2
        low, high = (middle, high) if power(middle) < target else (low, middle)
    additional = math.ceil(high * units_so_far)
    days = math.ceil(additional / daily_units) if daily_units else None
    return MidExperimentPower(now, target, high, additional, days, True)
