"""The registry of inference methods: `stats_config.method` names one, and adding a method is one entry here.

Each method takes the treatment and control statistics and the parsed config, and returns the method's fields
of a variant result in PostHog's shape.
"""

import math
from collections.abc import Callable
from typing import Protocol

from .bayesian import GaussianPrior, bayesian_test
from .frequentist import frequentist_test
from .statistics import Statistic


class InferenceSettings(Protocol):
    """What the methods read of a parsed `StatsConfig` (config.py imports this registry, not the reverse)."""

    relative: bool
    ci_level: float
    alpha: float
    sequential: bool
    sequential_tuning: float
    alternative: str
    prior: GaussianPrior | None


InferenceMethod = Callable[[Statistic, Statistic, InferenceSettings], dict]


def _bound(value: float) -> float | None:
    """An interval bound for JSON: the open end of a one-sided interval is null."""
    return None if math.isinf(value) else float(value)


def _frequentist(treatment: Statistic, control: Statistic, config: InferenceSettings) -> dict:
    outcome = frequentist_test(
        treatment,
        control,
        alpha=config.alpha,
        relative=config.relative,
        sequential=config.sequential,
        sequential_tuning=config.sequential_tuning,
        alternative=config.alternative,
    )
    return {
        "method": "frequentist",
        "p_value": float(outcome.p_value),
        "confidence_interval": [_bound(bound) for bound in outcome.ci],
        "significant": bool(outcome.significant),
    }


def _bayesian(treatment: Statistic, control: Statistic, config: InferenceSettings) -> dict:
    outcome = bayesian_test(treatment, control, ci_level=config.ci_level, relative=config.relative, prior=config.prior)
    return {
        "method": "bayesian",
        "chance_to_win": float(outcome.chance_to_win),
        "credible_interval": [float(bound) for bound in outcome.ci],
        "significant": bool(outcome.significant),
    }


STATS_METHODS: dict[str, InferenceMethod] = {"bayesian": _bayesian, "frequentist": _frequentist}
DEFAULT_STATS_METHOD = "bayesian"
