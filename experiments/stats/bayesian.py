"""Bayesian test: Gaussian posterior of the effect, with a flat or Gaussian prior."""

import math
from dataclasses import dataclass

from scipy import stats

from .effects import estimate_effect
from .statistics import Statistic


@dataclass(frozen=True)
class BayesianResult:
    """`effect` and `se` are the posterior mean and standard deviation; `risk` is (control, treatment)."""

    effect: float
    ci: tuple[float, float]
    se: float
    chance_to_win: float
    risk: tuple[float, float]
    significant: bool


def _posterior(
    estimate: float, variance: float, prior_mean: float | None, prior_variance: float | None
) -> tuple[float, float]:
    """Combine the data with a N(μ0, σ0²) prior by precision weighting; a flat prior leaves it unchanged."""
    if prior_mean is None or variance == 0:
        return estimate, variance
    precision = 1 / variance + 1 / prior_variance
    return (estimate / variance + prior_mean / prior_variance) / precision, 1 / precision


def _chance_to_win_and_risk(mean: float, sd: float) -> tuple[float, tuple[float, float]]:
    """P(Δ > 0) = Φ(μ/σ); expected loss of choosing control μΦ(μ/σ) + σφ(μ/σ), of treatment −μΦ(−μ/σ) + σφ(μ/σ)."""
    if sd == 0:
        return (0.5 if mean == 0 else float(mean > 0)), (max(mean, 0.0), max(-mean, 0.0))
    z = mean / sd
    density = sd * stats.norm.pdf(z)
    control_risk = mean * stats.norm.cdf(z) + density
    treatment_risk = -mean * stats.norm.cdf(-z) + density
    return float(stats.norm.cdf(z)), (float(control_risk), float(treatment_risk))


def bayesian_test(
    treatment: Statistic,
    control: Statistic,
    *,
    ci_level: float = 0.95,
    relative: bool = True,
    prior_mean: float | None = None,
    prior_variance: float | None = None,
) -> BayesianResult:
    """Posterior of the effect; significant ("decisive") when chance_to_win > ci_level or < 1 − ci_level."""
    if not 0 < ci_level < 1:
        raise ValueError(f"ci_level must be between 0 and 1 (exclusive), got {ci_level}.")
    if (prior_mean is None) != (prior_variance is None):
        raise ValueError("Pass both prior_mean and prior_variance for a Gaussian prior, or neither for a flat one.")
    if prior_variance is not None and prior_variance <= 0:
        raise ValueError(f"prior_variance must be positive, got {prior_variance}.")
    effect = estimate_effect(treatment, control, relative=relative)
    mean, variance = _posterior(effect.estimate, effect.variance, prior_mean, prior_variance)
    sd = math.sqrt(variance)
    half_width = float(stats.norm.ppf((1 + ci_level) / 2)) * sd
    chance_to_win, risk = _chance_to_win_and_risk(mean, sd)
    return BayesianResult(
        effect=mean,
        ci=(mean - half_width, mean + half_width),
        se=sd,
        chance_to_win=chance_to_win,
        risk=risk,
        significant=chance_to_win > ci_level or chance_to_win < 1 - ci_level,
    )
