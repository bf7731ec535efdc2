"""Frequentist tests: fixed-horizon Welch t-test and an always-valid confidence sequence."""

import math
from dataclasses import dataclass

from scipy import stats

from .effects import EffectEstimate, compare, welch_satterthwaite
from .statistics import Statistic


@dataclass(frozen=True)
class FrequentistResult:
    effect: float
    ci: tuple[float, float]
    se: float
    p_value: float
    significant: bool


def welch_degrees_of_freedom(treatment: Statistic, control: Statistic) -> float:
    """Welch–Satterthwaite df with a = v_T/n_T, b = v_C/n_C."""
    return welch_satterthwaite(treatment.variance / treatment.n, control.variance / control.n, treatment.n, control.n)


ALTERNATIVES = ("two_sided", "greater", "less")
ONE_SIDED_ALPHA_RANGE = (1e-5, 0.4999)
BISECTION_TOLERANCE = 1e-10


def _welch(effect: EffectEstimate, df: float, alpha: float, alternative: str) -> tuple[float, tuple[float, float]]:
    """p-value and CI of the t statistic Δ/SE; a one-sided CI is open (infinite) on one end."""
    t = effect.estimate / effect.se
    if alternative == "two_sided":
        half_width = float(stats.t.ppf(1 - alpha / 2, df) * effect.se)
        return float(2 * stats.t.sf(abs(t), df)), (effect.estimate - half_width, effect.estimate + half_width)
    half_width = float(stats.t.ppf(1 - alpha, df) * effect.se)
    if alternative == "greater":
        return float(stats.t.sf(t, df)), (effect.estimate - half_width, math.inf)
    return float(stats.t.cdf(t, df)), (-math.inf, effect.estimate + half_width)


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


def _one_sided_sequence_half_width(unit_variance: float, n: int, rho_squared: float, alpha: float) -> float:
    """√(s²·2(nρ² + 1)/(nρ)²·ln(1 + √(nρ² + 1)/(2α))), the one-sided confidence sequence's half-width."""
    spread = n * rho_squared + 1
    return math.sqrt(unit_variance * 2 * spread / (n**2 * rho_squared) * math.log(1 + math.sqrt(spread) / (2 * alpha)))


def _one_sided_confidence_sequence(
    effect: EffectEstimate, n: int, alpha: float, tuning: float, alternative: str
) -> tuple[float, tuple[float, float]]:
    """One-sided confidence sequence with ρ fixed at `alpha`; the p-value is the α at which the bound meets 0,
    found by bisection over [1e−5, 0.4999] (and clamped to it)."""
    if alpha >= 0.5:
        raise ValueError("alpha must be below 0.5 for a one-sided sequential test.")
    rho_squared = (-2 * math.log(2 * alpha) + math.log(-2 * math.log(2 * alpha) + 1)) / tuning
    unit_variance = effect.variance * n
    direction = 1 if alternative == "greater" else -1
    signed = direction * effect.estimate

    def margin(level: float) -> float:
        # Positive when the bound at this level excludes 0 in the tested direction.
        return signed - _one_sided_sequence_half_width(unit_variance, n, rho_squared, level)

    low, high = ONE_SIDED_ALPHA_RANGE
    if margin(low) >= 0:
        p_value = low
    elif margin(high) <= 0:
        p_value = high
    else:
        while high - low > BISECTION_TOLERANCE:
            middle = (low + high) / 2
            low, high = (low, middle) if margin(middle) >= 0 else (middle, high)
        p_value = (low + high) / 2
    half_width = _one_sided_sequence_half_width(unit_variance, n, rho_squared, alpha)
    if alternative == "greater":
        return p_value, (effect.estimate - half_width, math.inf)
    return p_value, (-math.inf, effect.estimate + half_width)


def frequentist_effect_test(
    effect: EffectEstimate,
    *,
    df: float,
    n: int,
    alpha: float = 0.05,
    sequential: bool = False,
    sequential_tuning: float = 5000,
    alternative: str = "two_sided",
) -> FrequentistResult:
    """Test an effect estimate with `df` degrees of freedom over `n` units in all; significant when p < alpha.

    `alternative` is two_sided, greater (H1: effect > 0) or less (H1: effect < 0).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha}.")
    if sequential_tuning <= 0:
        raise ValueError(f"sequential_tuning must be positive, got {sequential_tuning}.")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}.")
    if effect.se == 0:
        # No sampling noise at all: the observed effect is exact.
        exact = effect.estimate == 0 or (alternative == "greater" and effect.estimate < 0)
        exact = exact or (alternative == "less" and effect.estimate > 0)
        p_value, ci = (1.0 if exact else 0.0), (effect.estimate, effect.estimate)
    elif sequential and alternative == "two_sided":
        p_value, half_width = _confidence_sequence(effect, n, alpha, sequential_tuning)
        ci = (effect.estimate - half_width, effect.estimate + half_width)
    elif sequential:
        p_value, ci = _one_sided_confidence_sequence(effect, n, alpha, sequential_tuning, alternative)
    else:
        p_value, ci = _welch(effect, df, alpha, alternative)
    return FrequentistResult(effect=effect.estimate, ci=ci, se=effect.se, p_value=p_value, significant=p_value < alpha)


def frequentist_test(
    treatment: Statistic,
    control: Statistic,
    *,
    alpha: float = 0.05,
    relative: bool = True,
    sequential: bool = False,
    sequential_tuning: float = 5000,
    alternative: str = "two_sided",
) -> FrequentistResult:
    """Test treatment against control (Welch, or a confidence sequence), with a CI at 1 − alpha."""
    comparison = compare(treatment, control, relative=relative)
    return frequentist_effect_test(
        comparison.effect,
        df=comparison.df,
        n=comparison.n,
        alpha=alpha,
        sequential=sequential,
        sequential_tuning=sequential_tuning,
        alternative=alternative,
    )
