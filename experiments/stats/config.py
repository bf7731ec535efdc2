"""PostHog's `stats_config`, parsed in one place: every option the results engine reads, checked, with defaults.

`StatsConfig.from_dict` is used both when an experiment is written (its errors become 400s naming
`stats_config`) and when results are computed, so a config that was accepted always computes.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from experiments import messages

from .methods import DEFAULT_STATS_METHOD, STATS_METHODS
from .multiple_testing import MULTIPLE_TESTING_METHODS

DEFAULT_CI_LEVEL = 0.95
DEFAULT_ALPHA = 0.05
DEFAULT_SEQUENTIAL_TUNING = 5000
DEFAULT_CUPED_LOOKBACK_DAYS = 14
CUPED_LOOKBACK_DAYS_RANGE = (1, 30)
DIFFERENCE_TYPES = ("relative", "absolute")


class StatsConfigError(ValueError):
    """A malformed `stats_config`; `message` says which option and what it must be."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _section(stats_config: Mapping, name: str) -> Mapping:
    section = stats_config.get(name)
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise StatsConfigError(messages.STATS_CONFIG_SECTION_NOT_OBJECT.format(section=name))
    return section


def _open_unit_interval(section: Mapping, name: str, option: str, default: float) -> float:
    value = section.get(name)
    if value is None:
        return default
    if not (_is_number(value) and 0 < value < 1):
        raise StatsConfigError(messages.STATS_CONFIG_OPTION_INVALID.format(option=option))
    return value


def _boolean(value: Any, option: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise StatsConfigError(messages.STATS_CONFIG_NOT_BOOLEAN.format(option=option))
    return value


def _method(stats_config: Mapping) -> str:
    method = stats_config.get("method")
    if method in (None, ""):
        return DEFAULT_STATS_METHOD
    if method not in STATS_METHODS:
        raise StatsConfigError(messages.INVALID_STATS_METHOD.format(method=method))
    return method


def _sequential_tuning(frequentist: Mapping) -> float:
    tuning = frequentist.get("sequential_tuning")
    if tuning is None:
        return DEFAULT_SEQUENTIAL_TUNING
    if not (_is_number(tuning) and tuning > 0):
        raise StatsConfigError(messages.STATS_CONFIG_TUNING_INVALID)
    return tuning


def _cuped(stats_config: Mapping) -> tuple[bool, int]:
    """`cuped` is `{"enabled", "lookback_days"}` or a bare boolean; lookback days are clamped to 1–30."""
    cuped = stats_config.get("cuped")
    if not isinstance(cuped, Mapping):
        return _boolean(cuped, "cuped"), DEFAULT_CUPED_LOOKBACK_DAYS
    enabled = _boolean(cuped.get("enabled"), "cuped.enabled")
    days = cuped.get("lookback_days")
    if days is None:
        return enabled, DEFAULT_CUPED_LOOKBACK_DAYS
    if isinstance(days, bool) or not isinstance(days, int):
        raise StatsConfigError(messages.STATS_CONFIG_LOOKBACK_INVALID)
    low, high = CUPED_LOOKBACK_DAYS_RANGE
    return enabled, min(max(days, low), high)


@dataclass(frozen=True)
class StatsConfig:
    method: str = DEFAULT_STATS_METHOD
    relative: bool = True
    ci_level: float = DEFAULT_CI_LEVEL
    alpha: float = DEFAULT_ALPHA
    sequential: bool = False
    sequential_tuning: float = DEFAULT_SEQUENTIAL_TUNING
    cuped: bool = False
    cuped_lookback_days: int = DEFAULT_CUPED_LOOKBACK_DAYS
    multiple_testing_correction: str | None = None

    @classmethod
    def from_dict(cls, stats_config: Mapping | None) -> "StatsConfig":
        """Parse `stats_config` (None means every default); raises StatsConfigError naming a malformed option."""
        if stats_config is None:
            return cls()
        if not isinstance(stats_config, Mapping):
            raise StatsConfigError(messages.STATS_CONFIG_NOT_OBJECT)
        method = _method(stats_config)
        ci_level = _open_unit_interval(
            _section(stats_config, "bayesian"), "ci_level", "bayesian.ci_level", DEFAULT_CI_LEVEL
        )
        frequentist = _section(stats_config, "frequentist")
        alpha = _open_unit_interval(frequentist, "alpha", "frequentist.alpha", DEFAULT_ALPHA)
        sequential = _boolean(frequentist.get("sequential"), "frequentist.sequential")
        sequential_tuning = _sequential_tuning(frequentist)
        difference_type = stats_config.get("difference_type")
        if difference_type not in (None, *DIFFERENCE_TYPES):
            raise StatsConfigError(messages.STATS_CONFIG_DIFFERENCE_TYPE_INVALID)
        correction = stats_config.get("multiple_testing_correction")
        if correction not in (None, *MULTIPLE_TESTING_METHODS):
            raise StatsConfigError(messages.STATS_CONFIG_CORRECTION_INVALID)
        cuped, cuped_lookback_days = _cuped(stats_config)
        return cls(
            method=method,
            relative=difference_type != "absolute",
            ci_level=ci_level,
            alpha=alpha,
            sequential=sequential,
            sequential_tuning=sequential_tuning,
            cuped=cuped,
            cuped_lookback_days=cuped_lookback_days,
            multiple_testing_correction=correction,
        )
