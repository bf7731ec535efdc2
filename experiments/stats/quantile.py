"""Quantile metrics (P50–P99): a quantile's sampling variance from the sample quantiles around it.

GrowthBook's method: alongside the sample quantile q̂ at level ν, the database returns the sample quantiles L and U at
levels ν ∓ z√(ν(1−ν)/n*). (U − L)/2z then estimates √(ν(1−ν)/n*)/f(q), so the per-unit variance is
v = (n*/n)(n − 1)((U − L)/2z)², with Var(q̂) = v/n. Both statistics fit the `Statistic` protocol (n, mean, variance),
so the absolute and relative effects, the Welch test and the Bayesian test apply unchanged.

- `QuantileStatistic`: unit level, q̂ over one value per unit; n is the number of units.
- `QuantileClusteredStatistic`: event level, q̂ over every event value; n is the number of events, and the variance
  is inflated by the clustering of events within units: v·V_cl/(ν(1−ν)/n), where V_cl is the delta-method variance
  of S/N, S_i being the unit's events at or below its arm's q̂ and N_i its event count.
"""

import math
from dataclasses import dataclass

from scipy import stats

from .statistics import sample_covariance, sample_variance

Z_975 = float(stats.norm.ppf(0.975))
LEVEL_CLAMP = (1e-8, 1 - 1e-8)


def quantile_bound_levels(nu: float, nstar: int) -> tuple[float, float]:
    """The levels of L and U: ν ∓ z√(ν(1−ν)/n*), clamped to [1e−8, 1 − 1e−8]."""
    half_width = Z_975 * math.sqrt(nu * (1 - nu) / nstar)
    low, high = LEVEL_CLAMP
    return max(low, nu - half_width), min(high, nu + half_width)


def quantile_inference_possible(*, n: int, nu: float, lower: float, upper: float) -> bool:
    """False when n ≤ z²ν/(1−ν) or n ≤ z²(1−ν)/ν (too few values for the quantile's tails), or L = U."""
    z_squared = Z_975**2
    return n > z_squared * nu / (1 - nu) and n > z_squared * (1 - nu) / nu and lower != upper


def _check_quantile_inputs(n: int, nu: float, nstar: float) -> None:
    if not 0 < nu < 1:
        raise ValueError(f"The quantile level must be between 0 and 1 (exclusive), got {nu}.")
    if n < 2:
        raise ValueError(f"A quantile statistic needs at least 2 values, got n={n}.")
    if not 0 < nstar <= n:
        raise ValueError(f"nstar must be in (0, n={n}], got {nstar}.")


@dataclass(frozen=True)
class QuantileStatistic:
    """Unit-level quantile: `n` units, sample quantile `quantile` at level `nu`, bounds `lower`/`upper` taken at
    `quantile_bound_levels(nu, nstar)`."""

    n: int
    nu: float
    quantile: float
    lower: float
    upper: float
    nstar: float

    def __post_init__(self) -> None:
        _check_quantile_inputs(self.n, self.nu, self.nstar)

    @property
    def mean(self) -> float:
        return self.quantile

    @property
    def variance(self) -> float:
        return (self.nstar / self.n) * (self.n - 1) * ((self.upper - self.lower) / (2 * Z_975)) ** 2


@dataclass(frozen=True)
class QuantileClusteredStatistic:
    """Event-level quantile over `n` events from `n_clusters` units; `sum`/`sum_squares` are over S_i (the unit's
    events at or below q̂) and `denominator_*` over N_i (its events), with their cross product."""

    n: int
    nu: float
    quantile: float
    lower: float
    upper: float
    nstar: float
    n_clusters: int
    sum: float
    sum_squares: float
    denominator_sum: float
    denominator_sum_squares: float
    numerator_denominator_sum_product: float

    def __post_init__(self) -> None:
        _check_quantile_inputs(self.n, self.nu, self.nstar)
        if self.n_clusters < 2 or self.denominator_sum <= 0:
            raise ValueError("An event-level quantile needs at least 2 units with events.")

    @property
    def mean(self) -> float:
        return self.quantile

    @property
    def cluster_variance(self) -> float:
        """V_cl = (σ²_S − 2rσ_SN + r²σ²_N)/(Kμ_N²), r = μ_S/μ_N: the variance of the share of events below q̂."""
        k = self.n_clusters
        mean_s, mean_n = self.sum / k, self.denominator_sum / k
        ratio = mean_s / mean_n
        var_s = sample_variance(k, self.sum, self.sum_squares)
        var_n = sample_variance(k, self.denominator_sum, self.denominator_sum_squares)
        cov = sample_covariance(k, self.sum, self.denominator_sum, self.numerator_denominator_sum_product)
        return max(0.0, (var_s - 2 * ratio * cov + ratio**2 * var_n) / (k * mean_n**2))

    @property
    def variance(self) -> float:
        unclustered = QuantileStatistic(self.n, self.nu, self.quantile, self.lower, self.upper, self.nstar).variance
        return unclustered * self.cluster_variance / (self.nu * (1 - self.nu) / self.n)
