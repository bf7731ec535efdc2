"""Absolute and relative treatment effects with their sampling variance, and the comparison every test reads."""

import math
from dataclasses import dataclass

from .cuped import CupedAdjustedMean
from .statistics import Statistic


@dataclass(frozen=True)
class EffectEstimate:
    """Point estimate of the effect and the variance of that estimate."""

    estimate: float
    variance: float

    @property
    def se(self) -> float:
        return math.sqrt(self.variance)


def relative_denominator(control: Statistic) -> float:
    """The control mean; after CUPED the *unadjusted* one, so the lift keeps its natural scale."""
    if isinstance(control, CupedAdjustedMean):
        return control.unadjusted_mean
    return control.mean


def estimate_effect(treatment: Statistic, control: Statistic, *, relative: bool) -> EffectEstimate:
    """Effect of treatment over control.

    Absolute: Δ = m_T − m_C, Var = v_T/n_T + v_C/n_C.
    Relative: Δ = (m_T − m_C)/u, Var = v_T/(n_T·u²) + m_T²·v_C/(n_C·u⁴), u the control mean.
    """
    if isinstance(treatment, CupedAdjustedMean) != isinstance(control, CupedAdjustedMean):
        raise ValueError("Treatment and control must both be CUPED-adjusted, or neither.")
    difference = treatment.mean - control.mean
    treatment_term = treatment.variance / treatment.n
    control_term = control.variance / control.n
    if not relative:
        return EffectEstimate(difference, treatment_term + control_term)
    baseline = relative_denominator(control)
    if baseline == 0:
        raise ValueError("The control mean is 0, so the relative effect is undefined; use an absolute one.")
    variance = treatment_term / baseline**2 + treatment.mean**2 * control_term / baseline**4
    return EffectEstimate(difference / baseline, variance)


@dataclass(frozen=True)
class Comparison:
    """What an inference method tests: the effect of treatment over control with Welch's degrees of freedom (inf
    when the effect has no noise), the units of both arms, and the control's unadjusted mean (a proper prior on the
    relative lift is rescaled by it for an absolute effect)."""

    effect: EffectEstimate
    df: float
    n: int
    control_mean: float


def welch_satterthwaite(treatment_term: float, control_term: float, n_treatment: int, n_control: int) -> float:
    """Welch–Satterthwaite df = (a + b)²/(a²/(n_T − 1) + b²/(n_C − 1)), a and b each arm's share of the effect's
    variance."""
    return (treatment_term + control_term) ** 2 / (
        treatment_term**2 / (n_treatment - 1) + control_term**2 / (n_control - 1)
    )


def compare(treatment: Statistic, control: Statistic, *, relative: bool) -> Comparison:
    """The comparison of two statistics: `estimate_effect`, df from their per-unit variances."""
    effect = estimate_effect(treatment, control, relative=relative)
    df = (
        welch_satterthwaite(treatment.variance / treatment.n, control.variance / control.n, treatment.n, control.n)
        if effect.se
        else math.inf
    )
    return Comparison(effect=effect, df=df, n=treatment.n + control.n, control_mean=relative_denominator(control))
