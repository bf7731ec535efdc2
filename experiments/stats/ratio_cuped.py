"""CUPED for ratio metrics (regression adjustment of M/D by its pre-exposure ratio Mp/Dp).

GrowthBook's `RegressionAdjustedRatioStatistic`: with Λ the per-unit covariance of (M, D, Mp, Dp) and the delta-method
gradients g = (1/D̄, −M̄/D̄²), g_p = (1/D̄p, −M̄p/D̄p²), each arm has Var(R) = gΛg, Var(Rp) = g_pΛg_p and
Cov(R, Rp) = gΛg_p. θ = ΣCov/ΣVar(Rp) over both arms; the adjusted ratio A = R − θRp has per-unit variance
Var(R) + θ²Var(Rp) − 2θCov. The absolute effect is A_T − A_C; the relative one (A_T − A_C)/|R_C|, its variance by
the delta method over both arms' four means.
"""

import math
from dataclasses import dataclass

import numpy as np

from .effects import Comparison, EffectEstimate, welch_satterthwaite

MIN_THETA = 1e-8


@dataclass(frozen=True)
class RatioCupedStatistic:
    """Sums over one arm's units of M, D (post-exposure) and Mp, Dp (pre-exposure), with every cross product."""

    n: int
    sum: float
    sum_squares: float
    denominator_sum: float
    denominator_sum_squares: float
    numerator_denominator_sum_product: float
    covariate_sum: float
    covariate_sum_squares: float
    covariate_denominator_sum: float
    covariate_denominator_sum_squares: float
    sum_products: float  # Σ M·Mp
    denominator_covariate_denominator_sum_product: float  # Σ D·Dp
    covariate_numerator_denominator_sum_product: float  # Σ Mp·Dp
    numerator_covariate_denominator_sum_product: float  # Σ M·Dp
    covariate_numerator_denominator_post_sum_product: float  # Σ Mp·D

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ValueError(f"RatioCupedStatistic needs at least 2 units, got n={self.n}.")
        if self.denominator_sum == 0 or self.covariate_denominator_sum == 0:
            raise ValueError("Both the post- and pre-exposure denominators must have a non-zero sum.")

    @property
    def means(self) -> np.ndarray:
        """(M̄, D̄, M̄p, D̄p)."""
        return (
            np.array([self.sum, self.denominator_sum, self.covariate_sum, self.covariate_denominator_sum], dtype=float)
            / self.n
        )

    @property
    def covariance(self) -> np.ndarray:
        """The unbiased per-unit covariance matrix Λ of (M, D, Mp, Dp)."""
        totals = np.array(
            [self.sum, self.denominator_sum, self.covariate_sum, self.covariate_denominator_sum], dtype=float
        )
        products = np.array(
            [
                [
                    self.sum_squares,
                    self.numerator_denominator_sum_product,
                    self.sum_products,
                    self.numerator_covariate_denominator_sum_product,
                ],
                [
                    self.numerator_denominator_sum_product,
                    self.denominator_sum_squares,
                    self.covariate_numerator_denominator_post_sum_product,
                    self.denominator_covariate_denominator_sum_product,
                ],
                [
                    self.sum_products,
                    self.covariate_numerator_denominator_post_sum_product,
                    self.covariate_sum_squares,
                    self.covariate_numerator_denominator_sum_product,
                ],
                [
                    self.numerator_covariate_denominator_sum_product,
                    self.denominator_covariate_denominator_sum_product,
                    self.covariate_numerator_denominator_sum_product,
                    self.covariate_denominator_sum_squares,
                ],
            ],
            dtype=float,
        )
        return (products - np.outer(totals, totals) / self.n) / (self.n - 1)

    @property
    def ratio(self) -> float:
        m, d, _, _ = self.means
        return m / d

    @property
    def covariate_ratio(self) -> float:
        _, _, mp, dp = self.means
        return mp / dp

    def _gradients(self) -> tuple[np.ndarray, np.ndarray]:
        m, d, mp, dp = self.means
        return np.array([1 / d, -m / d**2, 0.0, 0.0]), np.array([0.0, 0.0, 1 / dp, -mp / dp**2])

    def ratio_moments(self) -> tuple[float, float, float]:
        """Per-unit (Var(R), Var(Rp), Cov(R, Rp))."""
        post, pre = self._gradients()
        sigma = self.covariance
        return float(post @ sigma @ post), float(pre @ sigma @ pre), float(post @ sigma @ pre)


def ratio_cuped_theta(treatment: RatioCupedStatistic, control: RatioCupedStatistic) -> float:
    """θ = Σ_arms Cov(R, Rp)/Σ_arms Var(Rp); 0 (the plain ratio) when |θ| < 1e−8 or the covariate does not vary."""
    moments = [arm.ratio_moments() for arm in (treatment, control)]
    covariate_variance = sum(variance for _, variance, _ in moments)
    if covariate_variance <= 0:
        return 0.0
    theta = sum(covariance for _, _, covariance in moments) / covariate_variance
    return 0.0 if abs(theta) < MIN_THETA else theta


def _adjusted(arm: RatioCupedStatistic, theta: float) -> tuple[float, np.ndarray]:
    """A = R − θRp and its gradient over the arm's four means."""
    post, pre = arm._gradients()
    return arm.ratio - theta * arm.covariate_ratio, post - theta * pre


def _effect_terms(
    treatment: RatioCupedStatistic, control: RatioCupedStatistic, *, relative: bool
) -> tuple[float, float, float, float]:
    """(effect, treatment's share of its variance, control's share, θ)."""
    theta = ratio_cuped_theta(treatment, control)
    adjusted_t, gradient_t = _adjusted(treatment, theta)
    adjusted_c, gradient_c = _adjusted(control, theta)
    difference = adjusted_t - adjusted_c
    if relative:
        baseline = control.ratio
        if baseline == 0:
            raise ValueError("The control ratio is 0, so the relative effect is undefined; use an absolute one.")
        scale = abs(baseline)
        ratio_gradient, _ = control._gradients()
        # f = (A_T − A_C)/|R_C|: ∂f/∂x_T = ∂A_T/∂x_T/|R_C|; ∂f/∂x_C = −∂A_C/∂x_C/|R_C| − f·sign(R_C)·∂R_C/∂x_C/|R_C|.
        effect = difference / scale
        gradient_t = gradient_t / scale
        gradient_c = -gradient_c / scale - effect * np.sign(baseline) * ratio_gradient / scale
    else:
        effect = difference
    treatment_term = float(gradient_t @ treatment.covariance @ gradient_t) / treatment.n
    control_term = float(gradient_c @ control.covariance @ gradient_c) / control.n
    return float(effect), max(0.0, treatment_term), max(0.0, control_term), theta


def ratio_cuped_effect(
    treatment: RatioCupedStatistic, control: RatioCupedStatistic, *, relative: bool
) -> tuple[EffectEstimate, float]:
    """The CUPED-adjusted effect of treatment over control, and θ."""
    effect, treatment_term, control_term, theta = _effect_terms(treatment, control, relative=relative)
    return EffectEstimate(effect, treatment_term + control_term), theta


def ratio_cuped_comparison(
    treatment: RatioCupedStatistic, control: RatioCupedStatistic, *, relative: bool
) -> Comparison:
    """The adjusted effect as the tests read it: Welch's df from each arm's share of its variance, and the
    unadjusted control ratio (the scale of a prior on the relative lift)."""
    effect, treatment_term, control_term, _theta = _effect_terms(treatment, control, relative=relative)
    noisy = treatment_term + control_term > 0
    return Comparison(
        effect=EffectEstimate(effect, treatment_term + control_term),
        df=welch_satterthwaite(treatment_term, control_term, treatment.n, control.n) if noisy else math.inf,
        n=treatment.n + control.n,
        control_mean=control.ratio,
    )
