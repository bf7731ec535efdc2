"""Bayesian test: Gaussian posterior of the effect, with a flat or Gaussian prior."""

import dataclasses
import math
from dataclasses import dataclass

from scipy import stats

from .effects import EffectEstimate, estimate_effect, relative_denominator
from .statistics import Statistic

DEFAULT_PRIOR_STDDEV = 0.3
# A prior's |mean| and its stddev's range, so that its variance (and its rescaling to an absolute effect) stays a
# positive finite float: stddev² of 1e200 raises OverflowError, of 1e-200 is 0.
PRIOR_MAX_ABS_MEAN = 1e100
PRIOR_STDDEV_RANGE = (1e-100, 1e100)


@dataclass(frozen=True)
class GaussianPrior:
    """A proper N(mean, stddev²) prior on the *relative* lift (GrowthBook's `priorSettings`).

    For an absolute analysis it is rescaled to the control's scale: mean·|m_C| and variance·m_C².
    """

    mean: float = 0.0
    stddev: float = DEFAULT_PRIOR_STDDEV

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.stddev)) or self.stddev <= 0:
            raise ValueError(f"A prior needs a finite mean and a positive stddev, got {self.mean}, {self.stddev}.")

    def on_effect_scale(self, control_mean: float, *, relative: bool) -> tuple[float, float]:
        """(prior mean, prior variance) on the scale of the effect being tested."""
        if relative:
            return self.mean, self.stddev * self.stddev
        if control_mean == 0:
            raise ValueError("A proper prior on an absolute effect needs a non-zero control mean.")
        scale = abs(control_mean)
        return self.mean * scale, (self.stddev * scale) * (self.stddev * scale)


@dataclass(frozen=True)
class BayesianResult:
    """`effect` and `se` are the posterior mean and standard deviation; `risk` is (control, treatment).

    With a proper prior, `flat_prior` is the same test under a flat prior (the supplemental result).
    """

    effect: float
    ci: tuple[float, float]
    se: float
    chance_to_win: float
    risk: tuple[float, float]
    significant: bool
    flat_prior: "BayesianResult | None" = None


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


def bayesian_effect_test(
    effect: EffectEstimate,
    *,
    ci_level: float = 0.95,
    prior_mean: float | None = None,
    prior_variance: float | None = None,
) -> BayesianResult:
    """Posterior of an effect estimate under a flat or N(prior_mean, prior_variance) prior on its own scale;
    significant ("decisive") when chance_to_win > ci_level or < 1 − ci_level."""
    if not 0 < ci_level < 1:
        raise ValueError(f"ci_level must be between 0 and 1 (exclusive), got {ci_level}.")
    if (prior_mean is None) != (prior_variance is None):
        raise ValueError("Pass both prior_mean and prior_variance for a Gaussian prior, or neither for a flat one.")
    if prior_variance is not None and prior_variance <= 0:
        raise ValueError(f"prior_variance must be positive, got {prior_variance}.")
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


def bayesian_test(
    treatment: Statistic,
    control: Statistic,
    *,
    ci_level: float = 0.95,
    relative: bool = True,
    prior: GaussianPrior | None = None,
    prior_mean: float | None = None,
    prior_variance: float | None = None,
) -> BayesianResult:
    """Posterior of treatment's effect over control.

    `prior` is a proper prior on the relative lift (rescaled for absolute effects), and the result then carries
    the flat-prior result in `flat_prior`; `prior_mean`/`prior_variance` give a prior on the effect's own scale.
    """
    if prior is not None and prior_mean is not None:
        raise ValueError("Pass either prior (on the relative lift) or prior_mean/prior_variance, not both.")
    effect = estimate_effect(treatment, control, relative=relative)
    if prior is None:
        return bayesian_effect_test(effect, ci_level=ci_level, prior_mean=prior_mean, prior_variance=prior_variance)
    scaled_mean, scaled_variance = prior.on_effect_scale(relative_denominator(control), relative=relative)
    informed = bayesian_effect_test(effect, ci_level=ci_level, prior_mean=scaled_mean, prior_variance=scaled_variance)
    return dataclasses.replace(informed, flat_prior=bayesian_effect_test(effect, ci_level=ci_level))
