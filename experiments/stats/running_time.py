"""Running-time calculator: sample size for a two-sided test and the days needed to reach it."""

import math

from scipy import stats


def _check_open_unit_interval(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value}.")


def required_sample_size_per_variant(
    *,
    baseline_mean: float,
    variance: float | None = None,
    minimum_detectable_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    """Units per variant to detect a relative change of `minimum_detectable_effect` (0.1 = 10%).

    Mean metrics (pass the per-unit `variance`): n = (z_{1−α/2} + z_power)²·2σ²/δ², δ = MDE·baseline.
    Conversion rates (leave `variance` out, `baseline_mean` is the rate p1): with p2 = p1·(1 + MDE),
    n = (z_{1−α/2} + z_power)²·(p1(1 − p1) + p2(1 − p2))/(p2 − p1)².
    """
    if minimum_detectable_effect <= 0:
        raise ValueError(f"minimum_detectable_effect must be positive, got {minimum_detectable_effect}.")
    _check_open_unit_interval("alpha", alpha)
    _check_open_unit_interval("power", power)
    z_sum_squared = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) ** 2
    if variance is None:
        _check_open_unit_interval("A conversion-rate baseline_mean", baseline_mean)
        treatment_rate = baseline_mean * (1 + minimum_detectable_effect)
        _check_open_unit_interval("The baseline rate raised by minimum_detectable_effect", treatment_rate)
        spread = baseline_mean * (1 - baseline_mean) + treatment_rate * (1 - treatment_rate)
        size = z_sum_squared * spread / (treatment_rate - baseline_mean) ** 2
    else:
        if variance <= 0:
            raise ValueError(f"variance must be positive, got {variance}.")
        if baseline_mean == 0:
            raise ValueError("baseline_mean must not be 0: a relative effect of a zero baseline is zero.")
        delta = minimum_detectable_effect * abs(baseline_mean)
        size = z_sum_squared * 2 * variance / delta**2
    return math.ceil(size)


def running_time_days(sample_size_per_variant: int, variants: int, exposure_rate_per_day: float) -> int:
    """Whole days until every variant reaches its sample size, at `exposure_rate_per_day` units in total."""
    if sample_size_per_variant <= 0:
        raise ValueError(f"sample_size_per_variant must be positive, got {sample_size_per_variant}.")
    if variants < 2:
        raise ValueError(f"An experiment needs at least 2 variants, got {variants}.")
    if exposure_rate_per_day <= 0:
        raise ValueError(f"exposure_rate_per_day must be positive, got {exposure_rate_per_day}.")
    return math.ceil(sample_size_per_variant * variants / exposure_rate_per_day)
