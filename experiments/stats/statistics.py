"""Sufficient statistics per variant: the only inputs the tests need."""

from dataclasses import dataclass
from typing import Protocol


class Statistic(Protocol):
    """Anything with a unit count, a mean and a per-unit variance can be tested."""

    @property
    def n(self) -> int: ...

    @property
    def mean(self) -> float: ...

    @property
    def variance(self) -> float: ...


def sample_variance(n: int, total: float, total_squares: float) -> float:
    """Unbiased per-unit variance (Σx² − (Σx)²/n)/(n − 1), floored at 0 against rounding."""
    return max(0.0, (total_squares - total * total / n) / (n - 1))


def sample_covariance(n: int, total_x: float, total_y: float, total_products: float) -> float:
    """Unbiased per-unit covariance (Σxy − ΣxΣy/n)/(n − 1)."""
    return (total_products - total_x * total_y / n) / (n - 1)


def _require_units(name: str, n: int, minimum: int) -> None:
    if n < minimum:
        raise ValueError(f"{name} needs at least {minimum} units to estimate a variance, got n={n}.")


@dataclass(frozen=True)
class SampleMean:
    """Mean of a per-unit value (mean metrics)."""

    n: int
    sum: float
    sum_squares: float

    def __post_init__(self) -> None:
        _require_units("SampleMean", self.n, 2)

    @property
    def mean(self) -> float:
        return self.sum / self.n

    @property
    def variance(self) -> float:
        return sample_variance(self.n, self.sum, self.sum_squares)


@dataclass(frozen=True)
class Proportion:
    """Share of units that converted (funnel metrics); variance is the Bernoulli p(1 − p)."""

    n: int
    successes: float

    def __post_init__(self) -> None:
        _require_units("Proportion", self.n, 1)
        if not 0 <= self.successes <= self.n:
            raise ValueError(f"Proportion successes must lie in [0, n={self.n}], got {self.successes}.")

    @property
    def mean(self) -> float:
        return self.successes / self.n

    @property
    def variance(self) -> float:
        return self.mean * (1 - self.mean)


@dataclass(frozen=True)
class Ratio:
    """Ratio of two per-unit means M/D (ratio and retention metrics)."""

    n: int
    numerator_sum: float
    numerator_sum_squares: float
    denominator_sum: float
    denominator_sum_squares: float
    numerator_denominator_sum_product: float

    def __post_init__(self) -> None:
        _require_units("Ratio", self.n, 2)
        if self.denominator_sum == 0:
            raise ValueError("Ratio denominator_sum is 0, so the ratio of means is undefined.")

    @property
    def mean(self) -> float:
        return self.numerator_sum / self.denominator_sum

    @property
    def variance(self) -> float:
        """Per-unit delta-method variance Var(M)/D² + M²·Var(D)/D⁴ − 2·M·Cov(M, D)/D³."""
        numerator_mean = self.numerator_sum / self.n
        denominator_mean = self.denominator_sum / self.n
        numerator_variance = sample_variance(self.n, self.numerator_sum, self.numerator_sum_squares)
        denominator_variance = sample_variance(self.n, self.denominator_sum, self.denominator_sum_squares)
        covariance = sample_covariance(
            self.n, self.numerator_sum, self.denominator_sum, self.numerator_denominator_sum_product
        )
        variance = (
            numerator_variance / denominator_mean**2
            + numerator_mean**2 * denominator_variance / denominator_mean**4
            - 2 * numerator_mean * covariance / denominator_mean**3
        )
        return max(0.0, variance)
