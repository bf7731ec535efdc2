"""Absolute and relative treatment effects with their sampling variance."""

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
