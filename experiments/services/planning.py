"""The running-time calculator: sample size per variant and days to reach it. Reads and writes nothing."""

from experiments import messages
from experiments.stats import required_sample_size_per_variant, running_time_days
from experiments_api.exceptions import DomainError


def running_time_calculate(
    *,
    baseline_value: float,
    variance: float | None,
    minimum_detectable_effect: float,
    alpha: float,
    power: float,
    variants: int,
    exposure_rate_per_day: float | None = None,
    **_unused,
) -> dict:
    """`variance` None means a conversion rate (funnel): the two-proportion formula is used."""
    try:
        sample_size = required_sample_size_per_variant(
            baseline_mean=baseline_value,
            variance=variance,
            minimum_detectable_effect=minimum_detectable_effect,
            alpha=alpha,
            power=power,
        )
    except ValueError as error:
        raise DomainError(str(error), attr="minimum_detectable_effect") from error
    except (OverflowError, ZeroDivisionError) as error:
        # Finite inputs whose squared effect under- or overflows a float.
        raise DomainError(messages.SAMPLE_SIZE_OUT_OF_RANGE, attr="minimum_detectable_effect") from error
    days = None
    if exposure_rate_per_day is not None:
        try:
            days = running_time_days(sample_size, variants, exposure_rate_per_day)
        except OverflowError as error:
            raise DomainError(messages.RUNNING_TIME_OUT_OF_RANGE, attr="exposure_rate_per_day") from error
    return {
        "baseline_value": baseline_value,
        "variance": baseline_value * (1 - baseline_value) if variance is None else variance,
        "recommended_sample_size": sample_size,
        "recommended_running_time_days": days,
    }
