"""PostHog's `stats_config`, parsed in one place: every option the results engine reads, checked, with defaults.

`StatsConfig.from_dict` is used both when an experiment is written (its errors become 400s naming
`stats_config`) and when results are computed, so a config that was accepted always computes.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from experiments import messages

from .bayesian import DEFAULT_PRIOR_STDDEV, PRIOR_MAX_ABS_MEAN, PRIOR_STDDEV_RANGE, GaussianPrior
from .frequentist import ALTERNATIVES
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


def stats_method(stats_config: Mapping | None) -> str:
    """The inference method `stats_config` selects (the default when unset) without parsing its other options: a
    metric's fingerprint reads only this, for every linked metric of every listed experiment."""
    if stats_config is None:
        return DEFAULT_STATS_METHOD
    if not isinstance(stats_config, Mapping):
        raise StatsConfigError(messages.STATS_CONFIG_NOT_OBJECT)
    return _method(stats_config)


def _method(stats_config: Mapping) -> str:
    method = stats_config.get("method")
    if method in (None, ""):
        return DEFAULT_STATS_METHOD
    if not isinstance(method, str) or method not in STATS_METHODS:
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


def parse_prior(raw: Any, path: str) -> GaussianPrior | None:
    """`{proper, mean, stddev}` (GrowthBook's priorSettings) on the relative lift; None when absent or improper."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise StatsConfigError(messages.PRIOR_NOT_OBJECT.format(path=path))
    proper = raw.get("proper", True)
    if not isinstance(proper, bool):
        raise StatsConfigError(messages.PRIOR_PROPER_NOT_BOOLEAN.format(path=path))
    mean = raw.get("mean", 0.0)
    if not (_is_number(mean) and abs(mean) <= PRIOR_MAX_ABS_MEAN):
        raise StatsConfigError(messages.PRIOR_MEAN_INVALID.format(path=path))
    stddev = raw.get("stddev", DEFAULT_PRIOR_STDDEV)
    low, high = PRIOR_STDDEV_RANGE
    if not (_is_number(stddev) and low <= stddev <= high):
        raise StatsConfigError(messages.PRIOR_STDDEV_INVALID.format(path=path))
    return GaussianPrior(mean=float(mean), stddev=float(stddev)) if proper else None


@dataclass(frozen=True)
class MetricPrior:
    """A metric's own `prior` (GrowthBook's metric-level priorSettings): it replaces the experiment's
    `stats_config.bayesian.prior` for that metric; `prior` None is a flat one (`proper: false`)."""

    prior: GaussianPrior | None


def _alternative(frequentist: Mapping, sequential: bool, alpha: float) -> str:
    alternative = frequentist.get("alternative")
    if alternative is None:
        return "two_sided"
    if alternative not in ALTERNATIVES:
        raise StatsConfigError(messages.STATS_CONFIG_ALTERNATIVE_INVALID)
    if sequential and alternative != "two_sided" and alpha >= 0.5:
        raise StatsConfigError(messages.STATS_CONFIG_ONE_SIDED_ALPHA)
    return alternative


def _experiment_wide(stats_config: Mapping) -> tuple[str | None, bool]:
    """`multiple_testing: {method, include_secondary}`: the correction across all metrics × variants."""
    raw = stats_config.get("multiple_testing")
    if raw is None:
        return None, False
    if not isinstance(raw, Mapping):
        raise StatsConfigError(messages.MULTIPLE_TESTING_INVALID)
    method, include_secondary = raw.get("method"), raw.get("include_secondary", False)
    if method not in (None, *MULTIPLE_TESTING_METHODS) or not isinstance(include_secondary, bool):
        raise StatsConfigError(messages.MULTIPLE_TESTING_INVALID)
    return method, include_secondary


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
    prior: GaussianPrior | None = None
    alternative: str = "two_sided"
    experiment_wide_correction: str | None = None
    correct_secondary_metrics: bool = False

    @classmethod
    def from_dict(cls, stats_config: Mapping | None) -> "StatsConfig":
        """Parse `stats_config` (None means every default); raises StatsConfigError naming a malformed option."""
        if stats_config is None:
            return cls()
        if not isinstance(stats_config, Mapping):
            raise StatsConfigError(messages.STATS_CONFIG_NOT_OBJECT)
        method = _method(stats_config)
        bayesian = _section(stats_config, "bayesian")
        ci_level = _open_unit_interval(bayesian, "ci_level", "bayesian.ci_level", DEFAULT_CI_LEVEL)
        prior = parse_prior(bayesian.get("prior"), "stats_config.bayesian.prior")
        frequentist = _section(stats_config, "frequentist")
        alpha = _open_unit_interval(frequentist, "alpha", "frequentist.alpha", DEFAULT_ALPHA)
        sequential = _boolean(frequentist.get("sequential"), "frequentist.sequential")
        sequential_tuning = _sequential_tuning(frequentist)
        alternative = _alternative(frequentist, sequential, alpha)
        difference_type = stats_config.get("difference_type")
        if difference_type not in (None, *DIFFERENCE_TYPES):
            raise StatsConfigError(messages.STATS_CONFIG_DIFFERENCE_TYPE_INVALID)
        correction = stats_config.get("multiple_testing_correction")
        if correction not in (None, *MULTIPLE_TESTING_METHODS):
            raise StatsConfigError(messages.STATS_CONFIG_CORRECTION_INVALID)
        cuped, cuped_lookback_days = _cuped(stats_config)
        experiment_wide, correct_secondary = _experiment_wide(stats_config)
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
            prior=prior,
            alternative=alternative,
            experiment_wide_correction=experiment_wide,
            correct_secondary_metrics=correct_secondary,
        )

    def for_metric(self, metric_prior: MetricPrior | None) -> "StatsConfig":
        """This config with the metric's own prior in place of the experiment's (unchanged without one)."""
        return self if metric_prior is None else dataclasses.replace(self, prior=metric_prior.prior)
