"""Experiment statistics on per-variant sufficient statistics: pure Python, NumPy and SciPy, no Django.

Statistics (each has `n`, `mean` and a per-unit `variance`, so every test takes any of them):
- `SampleMean(n, sum, sum_squares)`, `Proportion(n, successes)`, `Ratio(n, numerator_sum, numerator_sum_squares,
  denominator_sum, denominator_sum_squares, numerator_denominator_sum_product)`.
- `QuantileStatistic(n, nu, quantile, lower, upper, nstar)` (unit level) and `QuantileClusteredStatistic(n, nu,
  quantile, lower, upper, nstar, n_clusters, sum, sum_squares, denominator_sum, denominator_sum_squares,
  numerator_denominator_sum_product)` (event level); `quantile_bound_levels(nu, nstar)` gives the levels of
  lower/upper, `quantile_inference_possible(n=, nu=, lower=, upper=)` says whether to test.
- `CupedStatistic(n, sum, sum_squares, covariate_sum, covariate_sum_squares, sum_products)` with
  `cuped_adjust(treatment, control) -> (treatment_adjusted, control_adjusted, theta)`.
- `RatioCupedStatistic(n, sum, sum_squares, denominator_sum, denominator_sum_squares,
  numerator_denominator_sum_product, covariate_sum, covariate_sum_squares, covariate_denominator_sum,
  covariate_denominator_sum_squares, sum_products, denominator_covariate_denominator_sum_product,
  covariate_numerator_denominator_sum_product, numerator_covariate_denominator_sum_product,
  covariate_numerator_denominator_post_sum_product)` with `ratio_cuped_effect(treatment, control, relative=)
  -> (EffectEstimate, theta)` and `ratio_cuped_comparison(treatment, control, relative=) -> Comparison`.

Tests:
- `estimate_effect(treatment, control, relative=) -> EffectEstimate(estimate, variance)`, and
  `compare(treatment, control, relative=) -> Comparison(effect, df, n, control_mean)`: what every method of the
  registry tests (ratio CUPED builds its own).
- `bayesian_test(treatment, control, ci_level=, relative=, prior=GaussianPrior(mean, stddev))` (a proper prior on
  the relative lift; the result's `flat_prior` is the supplemental flat-prior result) and
  `bayesian_effect_test(effect, ci_level=, prior_mean=, prior_variance=)`.
- `frequentist_test(treatment, control, alpha=, relative=, sequential=, sequential_tuning=, alternative=)` with
  `alternative` two_sided | greater | less (fixed horizon and sequential), and `frequentist_effect_test(effect, df=,
  n=, ...)` for an effect computed elsewhere (ratio CUPED).
- `compute_metric_result(variants, metric_type=, stats_config=, baseline_key=, cuped=)`: one metric in PostHog's
  shape (CUPED on mean, funnel and ratio rows that carry covariates; frequentist variants carry `effect`); `StatsConfig.from_dict(stats_config)` parses the config; `methods.STATS_METHODS` is the method registry.

Corrections, health, power, bandits:
- `adjust_p_values(p_values, method)`, `apply_multiple_testing_correction(results, method, alpha=)` (one metric's
  variants), `experiment_wide_correction(results_per_metric, method, alpha=, untested=)` (every metric × variant,
  adding `p_value_adjusted` and `confidence_interval_adjusted`; `untested` unknown p-values count as 1),
  `adjusted_confidence_interval(effect, ci, p_adjusted, alpha=)` (two- or one-sided).
- `srm_check(counts, weights)`, `validation_failures(...)`, and `health_checks.health_findings(exposures=,
  multiple=, srm_p_value=, hours_since_launch=, metric_count=, flag_active=, variant_percentages=, running=)`
  returning `[{code, severity, message}]`.
- `mid_experiment_power(effect_variance=, units_so_far=, daily_units=, target_mde=, alpha=, goal_metrics=,
  variants=, corrected=) -> MidExperimentPower(power, target_power, scaling_factor, additional_units, days_needed,
  upper_bound_achieved)`; `required_sample_size_per_variant` and `running_time_days` plan before launch.
- `bandit_weights(arms=[BanditArm(n, mean, variance)], seed=, draws=, top_two=, min_weight=, inverse=)
  -> BanditWeights(best_arm_probabilities, weights, seed, update_message)`; `flag_percentages(weights)` gives
  integer rollout percentages summing to 100; `period_weighted_row(rows, period_units)` combines one arm's rows of
  a bandit's reweight periods (w_p = N_p/N) into pseudo-sums the statistics above read.
"""

from .bayesian import BayesianResult, bayesian_test
from .config import StatsConfig
from .cuped import CupedAdjustedMean, CupedStatistic, cuped_adjust
from .effects import EffectEstimate, estimate_effect
from .frequentist import FrequentistResult, frequentist_test
from .health import (
    BASELINE_MEAN_IS_ZERO,
    NOT_ENOUGH_EXPOSURES,
    NOT_ENOUGH_METRIC_DATA,
    srm_check,
    srm_p_value,
    validation_failures,
)
from .multiple_testing import adjust_p_values, apply_multiple_testing_correction
from .results import compute_metric_result, statistic_for
from .running_time import required_sample_size_per_variant, running_time_days
from .statistics import Proportion, Ratio, SampleMean, Statistic

__all__ = [
    "BASELINE_MEAN_IS_ZERO",
    "NOT_ENOUGH_EXPOSURES",
    "NOT_ENOUGH_METRIC_DATA",
    "BayesianResult",
    "CupedAdjustedMean",
    "CupedStatistic",
    "EffectEstimate",
    "FrequentistResult",
    "Proportion",
    "Ratio",
    "SampleMean",
    "Statistic",
    "StatsConfig",
    "adjust_p_values",
    "apply_multiple_testing_correction",
    "bayesian_test",
    "compute_metric_result",
    "cuped_adjust",
    "estimate_effect",
    "frequentist_test",
    "required_sample_size_per_variant",
    "running_time_days",
    "srm_check",
    "srm_p_value",
    "statistic_for",
    "validation_failures",
]
