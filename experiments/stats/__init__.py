"""Experiment statistics on per-variant sufficient statistics: pure Python, NumPy and SciPy, no Django.

Everything below is importable from `experiments.stats`; the submodule that defines it is in brackets.

Statistics (each has `n`, `mean` and a per-unit `variance`, so every test takes any of them):
- `SampleMean(n, sum, sum_squares)`, `Proportion(n, successes)`, `Ratio(n, numerator_sum, numerator_sum_squares,
  denominator_sum, denominator_sum_squares, numerator_denominator_sum_product)` [statistics]; `Statistic` is their
  protocol.
- `QuantileStatistic(n, nu, quantile, lower, upper, nstar)` (unit level) and `QuantileClusteredStatistic(n, nu,
  quantile, lower, upper, nstar, n_clusters, sum, sum_squares, denominator_sum, denominator_sum_squares,
  numerator_denominator_sum_product)` (event level: n events from n_clusters units, the sums over S_i = the unit's
  events at or below q̂ and N_i = its events) [quantile]; `quantile_bound_levels(nu, nstar) -> (low, high)` gives the
  levels of lower/upper, `quantile_inference_possible(*, n, nu, lower, upper) -> bool` says whether to test.
- `CupedStatistic(n, sum, sum_squares, covariate_sum, covariate_sum_squares, sum_products)` with
  `cuped_adjust(treatment, control) -> (treatment, control, theta)`, both arms a `CupedAdjustedMean(n, mean, variance,
  unadjusted_mean)` [cuped].
- `RatioCupedStatistic(n, sum, sum_squares, denominator_sum, denominator_sum_squares,
  numerator_denominator_sum_product, covariate_sum, covariate_sum_squares, covariate_denominator_sum,
  covariate_denominator_sum_squares, sum_products, denominator_covariate_denominator_sum_product,
  covariate_numerator_denominator_sum_product, numerator_covariate_denominator_sum_product,
  covariate_numerator_denominator_post_sum_product)` with `ratio_cuped_effect(treatment, control, *, relative)
  -> (EffectEstimate, theta)` and `ratio_cuped_comparison(treatment, control, *, relative) -> Comparison`
  [ratio_cuped].

Tests:
- `estimate_effect(treatment, control, *, relative) -> EffectEstimate(estimate, variance)` and `compare(treatment,
  control, *, relative) -> Comparison(effect, df, n, control_mean)` [effects]: what every method of the registry
  tests (ratio CUPED builds its own).
- `GaussianPrior(mean=0, stddev=0.3)`: a proper prior on the relative lift, rescaled for absolute effects [bayesian].
- `bayesian_test(treatment, control, *, ci_level, relative, prior=GaussianPrior | None, prior_mean, prior_variance)
  -> BayesianResult(effect, ci, se, chance_to_win, risk, significant, flat_prior)` (with a `prior`, `flat_prior` is
  the supplemental flat-prior result) and `bayesian_effect_test(effect, *, ci_level, prior_mean, prior_variance)`
  [bayesian].
- `frequentist_test(treatment, control, *, alpha, relative, sequential, sequential_tuning, alternative)
  -> FrequentistResult(effect, ci, se, p_value, significant)` with `alternative` one of `ALTERNATIVES` (two_sided,
  greater, less; fixed horizon and sequential), and `frequentist_effect_test(effect, *, df, n, alpha, sequential,
  sequential_tuning, alternative)` for an effect computed elsewhere (ratio CUPED) [frequentist].
- `StatsConfig.from_dict(stats_config)` parses `stats_config` (raising `StatsConfigError`) into `StatsConfig(method,
  relative, ci_level, alpha, sequential, sequential_tuning, cuped, cuped_lookback_days, multiple_testing_correction,
  prior, alternative, experiment_wide_correction, correct_secondary_metrics)`; `MetricPrior(prior)` is a
  metric's own prior (`prior` None = flat), which `StatsConfig.for_metric(metric_prior)` puts in place of the
  experiment's; `parse_prior(raw, path) -> GaussianPrior | None` reads `{proper, mean, stddev}` [config].
- `compute_metric_result(variants, *, metric_type, stats_config, baseline_key, cuped, metric_prior) -> dict`: one
  metric in PostHog's shape (CUPED on mean, funnel and ratio rows that carry covariates; frequentist variants carry
  `effect`); `statistic_for(variant, metric_type) -> Statistic` [results]; `methods.STATS_METHODS` is the method
  registry.

Corrections, health, power, bandits:
- `adjust_p_values(p_values, method)`, `apply_multiple_testing_correction(results, method, *, alpha)` (one metric's
  variants), `experiment_wide_correction(results_per_metric, method, *, alpha, untested)` (every metric × variant,
  adding `p_value_adjusted` and `confidence_interval_adjusted`; `untested` unknown p-values count as 1),
  `adjusted_confidence_interval(effect, ci, p_adjusted, *, alpha)` (two- or one-sided); `MULTIPLE_TESTING_METHODS`
  [multiple_testing].
- `srm_check(counts, weights) -> {p_value, mismatch, sufficient_data}`, `srm_p_value(counts, weights)`,
  `validation_failures(variant, *, metric_type, is_baseline)` [health].
- `health_findings(*, exposures, multiple, srm_p_value, hours_since_launch, metric_count, flag_active,
  variant_percentages, running) -> [{code, severity, message}]`, `srm_status(counts, p_value)` and
  `multiple_exposures_summary(*, multiple, total) -> {count, share, status}` (status healthy | unhealthy |
  not-enough-traffic) [health_checks].
- `mid_experiment_power(*, effect_variance, units_so_far, daily_units, target_mde, alpha, goal_metrics, variants,
  corrected) -> MidExperimentPower(power, target_power, scaling_factor, additional_units, days_needed,
  upper_bound_achieved)` and `power_at(*, effect_variance, target_mde, alpha, comparisons, scale)` [power];
  `required_sample_size_per_variant` and `running_time_days` plan before launch [running_time].
- `bandit_weights(arms=[BanditArm(n, mean, variance)], *, seed, draws, top_two, min_weight, inverse)
  -> BanditWeights(best_arm_probabilities, weights, seed, update_message)`; `floored_weights(shares, min_weight)`;
  `flag_percentages(weights)` gives integer rollout percentages summing to 100; `period_weighted_row(rows,
  period_units)` combines one arm's rows of a bandit's reweight periods (w_p = N_p/N) into pseudo-sums the statistics
  above read [bandits].
"""

from .bandits import BanditArm, BanditWeights, bandit_weights, flag_percentages, floored_weights, period_weighted_row
from .bayesian import BayesianResult, GaussianPrior, bayesian_effect_test, bayesian_test
from .config import MetricPrior, StatsConfig, StatsConfigError, parse_prior
from .cuped import CupedAdjustedMean, CupedStatistic, cuped_adjust
from .effects import Comparison, EffectEstimate, compare, estimate_effect
from .frequentist import ALTERNATIVES, FrequentistResult, frequentist_effect_test, frequentist_test
from .health import (
    BASELINE_MEAN_IS_ZERO,
    NOT_ENOUGH_EXPOSURES,
    NOT_ENOUGH_METRIC_DATA,
    srm_check,
    srm_p_value,
    validation_failures,
)
from .health_checks import health_findings, multiple_exposures_summary, srm_status
from .multiple_testing import (
    MULTIPLE_TESTING_METHODS,
    adjust_p_values,
    adjusted_confidence_interval,
    apply_multiple_testing_correction,
    experiment_wide_correction,
)
from .power import MidExperimentPower, mid_experiment_power, power_at
from .quantile import QuantileClusteredStatistic, QuantileStatistic, quantile_bound_levels, quantile_inference_possible
from .ratio_cuped import RatioCupedStatistic, ratio_cuped_comparison, ratio_cuped_effect
from .results import compute_metric_result, statistic_for
from .running_time import required_sample_size_per_variant, running_time_days
from .statistics import Proportion, Ratio, SampleMean, Statistic

__all__ = [
    "ALTERNATIVES",
    "BASELINE_MEAN_IS_ZERO",
    "MULTIPLE_TESTING_METHODS",
    "NOT_ENOUGH_EXPOSURES",
    "NOT_ENOUGH_METRIC_DATA",
    "BanditArm",
    "BanditWeights",
    "BayesianResult",
    "Comparison",
    "CupedAdjustedMean",
    "CupedStatistic",
    "EffectEstimate",
    "FrequentistResult",
    "GaussianPrior",
    "MetricPrior",
    "MidExperimentPower",
    "Proportion",
    "QuantileClusteredStatistic",
    "QuantileStatistic",
    "Ratio",
    "RatioCupedStatistic",
    "SampleMean",
    "Statistic",
    "StatsConfig",
    "StatsConfigError",
    "adjust_p_values",
    "adjusted_confidence_interval",
    "apply_multiple_testing_correction",
    "bandit_weights",
    "bayesian_effect_test",
    "bayesian_test",
    "compare",
    "compute_metric_result",
    "cuped_adjust",
    "estimate_effect",
    "experiment_wide_correction",
    "flag_percentages",
    "floored_weights",
    "frequentist_effect_test",
    "frequentist_test",
    "health_findings",
    "mid_experiment_power",
    "multiple_exposures_summary",
    "parse_prior",
    "period_weighted_row",
    "power_at",
    "quantile_bound_levels",
    "quantile_inference_possible",
    "ratio_cuped_comparison",
    "ratio_cuped_effect",
    "required_sample_size_per_variant",
    "running_time_days",
    "srm_check",
    "srm_p_value",
    "srm_status",
    "statistic_for",
    "validation_failures",
]
