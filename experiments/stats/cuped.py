"""CUPED variance reduction: adjust each arm's metric by a pre-exposure covariate."""

from dataclasses import dataclass

from .statistics import sample_covariance, sample_variance

MIN_COVARIATE_VARIANCE = 1e-10


@dataclass(frozen=True)
class CupedStatistic:
    """Sums over the units of one arm of the metric Y and its pre-exposure covariate X."""

    n: int
    sum: float
    sum_squares: float
    covariate_sum: float
    covariate_sum_squares: float
    sum_products: float

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ValueError(f"CupedStatistic needs at least 2 units, got n={self.n}.")

    @property
    def mean(self) -> float:
        return self.sum / self.n

    @property
    def covariate_mean(self) -> float:
        return self.covariate_sum / self.n

    @property
    def variance(self) -> float:
        return sample_variance(self.n, self.sum, self.sum_squares)

    @property
    def covariate_variance(self) -> float:
        return sample_variance(self.n, self.covariate_sum, self.covariate_sum_squares)

    @property
    def covariance(self) -> float:
        return sample_covariance(self.n, self.sum, self.covariate_sum, self.sum_products)


@dataclass(frozen=True)
class CupedAdjustedMean:
    """An arm after CUPED; `unadjusted_mean` stays the denominator of relative effects."""

    n: int
    mean: float
    variance: float
    unadjusted_mean: float


def cuped_theta(treatment: CupedStatistic, control: CupedStatistic) -> float:
    """θ = Cov(Y, X)/Var(X) over the units of both arms taken as one sample; 0 if X barely varies."""
    n = treatment.n + control.n
    metric_sum = treatment.sum + control.sum
    covariate_sum = treatment.covariate_sum + control.covariate_sum
    covariate_variance = sample_variance(
        n, covariate_sum, treatment.covariate_sum_squares + control.covariate_sum_squares
    )
    if covariate_variance < MIN_COVARIATE_VARIANCE:
        return 0.0
    covariance = sample_covariance(n, metric_sum, covariate_sum, treatment.sum_products + control.sum_products)
    return covariance / covariate_variance


def _adjust(arm: CupedStatistic, theta: float) -> CupedAdjustedMean:
    """Adjusted mean Ȳ − θX̄ and variance v_Y + θ²v_X − 2θ·Cov(Y, X), per unit."""
    variance = arm.variance + theta**2 * arm.covariate_variance - 2 * theta * arm.covariance
    return CupedAdjustedMean(
        n=arm.n,
        mean=arm.mean - theta * arm.covariate_mean,
        variance=max(0.0, variance),
        unadjusted_mean=arm.mean,
    )


def cuped_adjust(
    treatment: CupedStatistic, control: CupedStatistic
) -> tuple[CupedAdjustedMean, CupedAdjustedMean, float]:
    """Return (treatment_adjusted, control_adjusted, θ), both arms adjusted with the same pooled θ."""
    theta = cuped_theta(treatment, control)
    return _adjust(treatment, theta), _adjust(control, theta), theta
