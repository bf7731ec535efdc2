"""Frequentist tests: fixed-horizon Welch t-test and an always-valid confidence sequence."""

import math
from dataclasses import dataclass

from scipy import stats

from .effects import EffectEstimate, estimate_effect
from .statistics import Statistic


@dataclass(frozen=True)
class FrequentistResult:
    effect: float
    ci: tuple[float, float]
    se: float
    p_value: float
    significant: bool


def welch_degrees_of_freedom(treatment: Statistic, control: Statistic) -> float:
    """Welch–Satterthwaite df = (a + b)²/(a²/(n_T − 1) + b²/(n_C − 1)), a = v_T/n_T, b = v_C/n_C."""
    treatment_term = treatment.variance / treatment.n
    control_term = control.variance / control.n
    return (treatment_term + control_term) ** 2 / (
        treatment_term**2 / (treatment.n - 1) + control_term**2 / (control.n - 1)
    )


def _welch(effect: EffectEstimate, treatment: Statistic, control: Statistic, alpha: float) -> tuple[float, float]:
    """Two-sided p-value and CI half-width of the t statistic Δ/SE."""
    df = welch_degrees_of_freedom(treatment, control)
    p_value = 2 * stats.t.sf(abs(effect.estimate / effect.se), df)
    return float(p_value), float(stats.t.ppf(1 - alpha / 2, df) * effect.se)


def _confidence_sequence(effect: EffectEstimate, n: int, alpha: float, tuning: float) -> tuple[float, float]:
    """Asymptotic confidence sequence (Waudby-Smith et al.) with tuning N: p-value and half-width.

    ρ = √((−2 ln α + ln(−2 ln α + 1))/N), s² = SE²·n,
    half-width = s·√(2(nρ² + 1)·ln(√(nρ² + 1)/α)/(nρ)²),
    p = min(1, √(nρ² + 1)·exp(−ρ²·n·z²/(2(nρ² + 1)))), evaluated in log space because it can underflow.
    """
    rho_squared = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    spread = n * rho_squared + 1
    unit_sd = effect.se * math.sqrt(n)
    half_width = unit_sd * math.sqrt(2 * spread * math.log(math.sqrt(spread) / alpha) / (n**2 * rho_squared))
    z = effect.estimate / effect.se
    log_p_value = 0.5 * math.log(spread) - rho_squared * n * z**2 / (2 * spread)
    return math.exp(min(0.0, log_p_value)), half_width


def frequentist_test(
    treatment: Statistic,
    control: Statistic,
    *,
    alpha: float = 0.05,
    relative: bool = True,
    sequential: bool = False,
    sequential_tuning: float = 5000,
) -> FrequentistResult:
    """Two-sided test of treatment against control, with a CI at 1 − alpha; significant when p < alpha."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha}.")
    if sequential_tuning <= 0:
        raise ValueError(f"sequential_tuning must be positive, got {sequential_tuning}.")
    effect = estimate_effect(treatment, control, relative=relative)
    if effect.se == 0:
        # No sampling noise at all: the observed effect is exact.
        p_value, half_width = (1.0 if effect.estimate == 0 else 0.0), 0.0
    elif sequential:
        p_value, half_width = _confidence_sequence(effect, treatment.n + control.n, alpha, sequential_tuning)
    else:
        p_value, half_width = _welch(effect, treatment, control, alpha)
    return FrequentistResult(
        effect=effect.estimate,
        ci=(effect.estimate - half_width, effect.estimate + half_width),
        se=effect.se,
        p_value=p_value,
        significant=p_value < alpha,
    )
