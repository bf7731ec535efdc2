"""The registry of inference methods: `stats_config.method` names one, and adding a method is one entry here.

Each method takes the comparison of treatment with control (`effects.Comparison`: the effect, its degrees of
freedom, the units and the control mean) and the parsed config, and returns the method's fields of a variant result
in PostHog's shape.
"""

import math
from collections.abc import Callable
from typing import Protocol

from .bayesian import GaussianPrior, bayesian_effect_test
from .effects import Comparison
from .frequentist import frequentist_effect_test


class InferenceSettings(Protocol):
    """What the methods read of a parsed `StatsConfig` (config.py imports this registry, not the reverse)."""

    relative: bool
    ci_level: float
    alpha: float
    sequential: bool
    sequential_tuning: float
    alternative: str
    prior: GaussianPrior | None


InferenceMethod = Callable[[Comparison, InferenceSettings], dict]


def _bound(value: float) -> float | None:
    """An interval bound for JSON: the open end of a one-sided interval is null."""
    return None if math.isinf(value) else float(value)


def _frequentist(comparison: Comparison, config: InferenceSettings) -> dict:
    """`effect` is kept for the experiment-wide correction, which widens the interval around it."""
    outcome = frequentist_effect_test(
        comparison.effect,
        df=comparison.df,
        n=comparison.n,
        alpha=config.alpha,
        sequential=config.sequential,
        sequential_tuning=config.sequential_tuning,
        alternative=config.alternative,
    )
    return {
        "method": "frequentist",
        "effect": float(outcome.effect),
        "p_value": float(outcome.p_value),
        "confidence_interval": [_bound(bound) for bound in outcome.ci],
        "significant": bool(outcome.significant),
    }


def _bayesian(comparison: Comparison, config: InferenceSettings) -> dict:
    """A proper prior on the relative lift is rescaled to the control mean for an absolute effect."""
    prior_mean = prior_variance = None
    if config.prior is not None:
        prior_mean, prior_variance = config.prior.on_effect_scale(comparison.control_mean, relative=config.relative)
    outcome = bayesian_effect_test(
        comparison.effect, ci_level=config.ci_level, prior_mean=prior_mean, prior_variance=prior_variance
    )
    return {
        "method": "bayesian",
        "chance_to_win": float(outcome.chance_to_win),
        "credible_interval": [float(bound) for bound in outcome.ci],
        "significant": bool(outcome.significant),
    }


STATS_METHODS: dict[str, InferenceMethod] = {"bayesian": _bayesian, "frequentist": _frequentist}
DEFAULT_STATS_METHOD = "bayesian"
