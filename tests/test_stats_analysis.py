"""The analysis statistics: proper priors, one-sided tests, quantiles, ratio CUPED, experiment-wide correction,
mid-experiment power, bandit weights and health findings, against closed forms and scipy (spec/analysis.md)."""

import math
import re

import numpy as np
import pytest
from scipy import optimize, stats

from experiments import messages
from experiments.stats.bandits import (
    NOT_ENOUGH_UNITS,
    BanditArm,
    bandit_weights,
    flag_percentages,
    floored_weights,
)
from experiments.stats.bayesian import GaussianPrior, bayesian_effect_test, bayesian_test
from experiments.stats.config import MetricPrior
from experiments.stats.effects import EffectEstimate
from experiments.stats.frequentist import frequentist_effect_test, frequentist_test
from experiments.stats.health_checks import health_findings, multiple_exposures_summary, srm_status
from experiments.stats.multiple_testing import adjusted_confidence_interval, experiment_wide_correction
from experiments.stats.power import mid_experiment_power, power_at
from experiments.stats.quantile import (
    Z_975,
    QuantileClusteredStatistic,
    QuantileStatistic,
    quantile_bound_levels,
    quantile_inference_possible,
)
from experiments.stats.ratio_cuped import RatioCupedStatistic, ratio_cuped_effect, ratio_cuped_theta
from experiments.stats.results import compute_metric_result
from experiments.stats.statistics import SampleMean

LIFT = EffectEstimate(0.05, 0.03**2)


def test_a_proper_prior_on_the_lift_matches_the_worked_example():
    result = bayesian_effect_test(LIFT, prior_mean=0.0, prior_variance=0.3**2)

    precision = 1 / 0.03**2 + 1 / 0.3**2
    mean, sd = (0.05 / 0.03**2) / precision, math.sqrt(1 / precision)
    assert result.effect == pytest.approx(mean, abs=1e-9)
    assert result.se == pytest.approx(sd, abs=1e-9)
    assert result.chance_to_win == pytest.approx(stats.norm.cdf(mean / sd), abs=1e-9)
    assert result.ci == pytest.approx(stats.norm.interval(0.95, mean, sd), abs=1e-9)
    assert (round(result.effect, 5), round(result.se, 5), round(result.chance_to_win, 4)) == (0.0495, 0.02985, 0.9514)
    assert (round(result.ci[0], 4), round(result.ci[1], 4)) == (-0.009, 0.108)


def test_the_prior_is_rescaled_for_absolute_effects_and_the_flat_result_is_supplemental():
    treatment, control = SampleMean(1000, 5500.0, 60000.0), SampleMean(1000, 5000.0, 52000.0)

    result = bayesian_test(treatment, control, relative=False, prior=GaussianPrior(mean=0.1, stddev=0.2))

    flat = bayesian_test(treatment, control, relative=False)
    control_mean = 5.0
    prior_mean, prior_variance = 0.1 * control_mean, 0.2**2 * control_mean**2
    precision = 1 / flat.se**2 + 1 / prior_variance
    assert result.effect == pytest.approx((flat.effect / flat.se**2 + prior_mean / prior_variance) / precision, 1e-9)
    assert result.se == pytest.approx(math.sqrt(1 / precision), 1e-9)
    assert result.flat_prior == flat


def test_a_proper_prior_on_an_absolute_effect_needs_a_non_zero_control_mean():
    with pytest.raises(ValueError, match="non-zero control mean"):
        GaussianPrior().on_effect_scale(0.0, relative=False)


@pytest.mark.parametrize("stddev", [0, -1, math.inf])
def test_a_prior_needs_a_positive_finite_stddev(stddev):
    with pytest.raises(ValueError, match="positive stddev"):
        GaussianPrior(stddev=stddev)


@pytest.mark.parametrize(
    ("alternative", "p_value", "ci"),
    [
        ("greater", stats.norm.sf(0.05 / 0.03), (0.05 - stats.norm.ppf(0.95) * 0.03, math.inf)),
        ("less", stats.norm.cdf(0.05 / 0.03), (-math.inf, 0.05 + stats.norm.ppf(0.95) * 0.03)),
        ("two_sided", 2 * stats.norm.sf(0.05 / 0.03), stats.norm.interval(0.95, 0.05, 0.03)),
    ],
)
def test_one_sided_fixed_horizon_tests(alternative, p_value, ci):
    result = frequentist_effect_test(LIFT, df=math.inf, n=2000, alternative=alternative)

    assert result.p_value == pytest.approx(p_value, abs=1e-9)
    assert result.ci == pytest.approx(ci, abs=1e-9)
    if alternative == "greater":
        assert round(result.p_value, 4) == 0.0478


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_the_one_sided_sequential_p_value_is_where_the_bound_meets_zero(alternative):
    effect = EffectEstimate(0.05 if alternative == "greater" else -0.05, 0.02**2)
    n, tuning, alpha = 4000, 5000, 0.05

    result = frequentist_effect_test(
        effect, df=math.inf, n=n, alpha=alpha, sequential=True, sequential_tuning=tuning, alternative=alternative
    )

    rho_squared = (-2 * math.log(2 * alpha) + math.log(-2 * math.log(2 * alpha) + 1)) / tuning
    spread = n * rho_squared + 1

    def half_width(level):
        return math.sqrt(
            effect.variance * n * 2 * spread / (n**2 * rho_squared) * math.log(1 + math.sqrt(spread) / (2 * level))
        )

    expected = optimize.brentq(lambda level: abs(effect.estimate) - half_width(level), 1e-5, 0.4999, xtol=1e-12)
    assert result.p_value == pytest.approx(expected, abs=1e-6)
    open_end = math.inf if alternative == "greater" else -math.inf
    assert open_end in result.ci


def test_a_one_sided_sequential_test_refuses_alpha_from_one_half():
    with pytest.raises(ValueError, match="below 0.5"):
        frequentist_effect_test(LIFT, df=100, n=100, alpha=0.5, sequential=True, alternative="greater")


def test_an_unknown_alternative_is_refused():
    with pytest.raises(ValueError, match="alternative must be one of"):
        frequentist_effect_test(LIFT, df=100, n=100, alternative="sideways")


def test_the_unit_quantile_worked_example():
    control = QuantileStatistic(n=2000, nu=0.9, quantile=12.0, lower=11.4, upper=12.7, nstar=2000)
    treatment = QuantileStatistic(n=2100, nu=0.9, quantile=11.1, lower=10.6, upper=11.7, nstar=2100)

    result = frequentist_test(treatment, control, relative=True)

    v_c = 1999 * ((12.7 - 11.4) / (2 * Z_975)) ** 2
    v_t = 2099 * ((11.7 - 10.6) / (2 * Z_975)) ** 2
    se = math.sqrt(v_t / (2100 * 12.0**2) + 11.1**2 * v_c / (2000 * 12.0**4))
    assert result.effect == pytest.approx(-0.075, abs=1e-12)
    assert result.se == pytest.approx(se, abs=1e-9)
    assert (round(result.se, 5), round(result.p_value, 4)) == (0.03464, 0.0304)
    assert (round(result.ci[0], 4), round(result.ci[1], 4)) == (-0.1429, -0.0071)


def test_quantile_bound_levels_and_when_inference_is_possible():
    low, high = quantile_bound_levels(0.9, 400)
    half_width = Z_975 * math.sqrt(0.9 * 0.1 / 400)
    assert (low, high) == pytest.approx((0.9 - half_width, 0.9 + half_width), abs=1e-12)
    assert quantile_bound_levels(0.99999, 100)[1] == 1 - 1e-8
    # At P99 n must exceed z²·0.99/0.01 ≈ 380.3.
    assert quantile_inference_possible(n=381, nu=0.99, lower=1, upper=2)
    assert not quantile_inference_possible(n=380, nu=0.99, lower=1, upper=2)
    assert not quantile_inference_possible(n=5000, nu=0.5, lower=2, upper=2)


def test_an_event_quantile_with_one_event_per_unit_matches_the_unit_quantile():
    n, nu = 1000, 0.5
    below = 500  # S_i = 1 for the units at or below q̂, N_i = 1 for every unit
    clustered = QuantileClusteredStatistic(
        n=n, nu=nu, quantile=3.0, lower=2.5, upper=3.6, nstar=n, n_clusters=n,
        sum=below, sum_squares=below, denominator_sum=n, denominator_sum_squares=n,
        numerator_denominator_sum_product=below,
    )  # fmt: skip
    unit = QuantileStatistic(n=n, nu=nu, quantile=3.0, lower=2.5, upper=3.6, nstar=n)

    assert clustered.variance == pytest.approx(unit.variance * n / (n - 1), rel=1e-12)


@pytest.mark.parametrize("kwargs", [{"nu": 1.0}, {"nu": 0.0}, {"n": 1}, {"nstar": 0}, {"nstar": 5000}], ids=str)
def test_quantile_statistics_refuse_impossible_inputs(kwargs):
    with pytest.raises(ValueError):
        QuantileStatistic(**{"n": 1000, "nu": 0.5, "quantile": 1, "lower": 0, "upper": 2, "nstar": 1000, **kwargs})


def _ratio_cuped_arm(rng, n, lift):
    pre_d = rng.poisson(3, n) + 1
    pre_m = pre_d * rng.gamma(2, 5, n)
    d = pre_d + rng.poisson(1, n)
    m = (pre_m / pre_d * 0.7 + rng.gamma(2, 2, n)) * d * (1 + lift)
    return m.astype(float), d.astype(float), pre_m.astype(float), pre_d.astype(float)


def _ratio_cuped_statistic(m, d, mp, dp):
    return RatioCupedStatistic(
        n=len(m), sum=m.sum(), sum_squares=(m * m).sum(), denominator_sum=d.sum(), denominator_sum_squares=(d * d).sum(),
        numerator_denominator_sum_product=(m * d).sum(), covariate_sum=mp.sum(), covariate_sum_squares=(mp * mp).sum(),
        covariate_denominator_sum=dp.sum(), covariate_denominator_sum_squares=(dp * dp).sum(),
        sum_products=(m * mp).sum(), denominator_covariate_denominator_sum_product=(d * dp).sum(),
        covariate_numerator_denominator_sum_product=(mp * dp).sum(),
        numerator_covariate_denominator_sum_product=(m * dp).sum(),
        covariate_numerator_denominator_post_sum_product=(mp * d).sum(),
    )  # fmt: skip


def _influence(m, d, mp, dp):
    """Per-unit influence functions of R = M̄/D̄ and Rp = M̄p/D̄p (the delta method, from the raw values)."""
    ratio, pre_ratio = m.mean() / d.mean(), mp.mean() / dp.mean()
    return (m - ratio * d) / d.mean(), (mp - pre_ratio * dp) / dp.mean()


def test_ratio_cuped_matches_the_influence_function_computation_on_raw_units():
    rng = np.random.default_rng(7)
    arms = [_ratio_cuped_arm(rng, 3000, 0.04), _ratio_cuped_arm(rng, 3000, 0.0)]
    treatment, control = (_ratio_cuped_statistic(*arm) for arm in arms)

    effect, theta = ratio_cuped_effect(treatment, control, relative=False)

    influences = [_influence(*arm) for arm in arms]
    expected_theta = sum(np.cov(post, pre)[0, 1] for post, pre in influences) / sum(
        np.var(pre, ddof=1) for _, pre in influences
    )
    assert theta == pytest.approx(expected_theta, rel=1e-9)
    adjusted = [m.mean() / d.mean() - theta * mp.mean() / dp.mean() for m, d, mp, dp in arms]
    variance = sum(np.var(post - theta * pre, ddof=1) / len(post) for post, pre in influences)
    assert effect.estimate == pytest.approx(adjusted[0] - adjusted[1], rel=1e-9)
    assert effect.variance == pytest.approx(variance, rel=1e-9)
    plain_variance = sum(np.var(post, ddof=1) / len(post) for post, _ in influences)
    assert effect.variance < plain_variance


def test_ratio_cuped_relative_effect_uses_the_unadjusted_control_ratio():
    rng = np.random.default_rng(11)
    arms = [_ratio_cuped_arm(rng, 2000, 0.05), _ratio_cuped_arm(rng, 2000, 0.0)]
    treatment, control = (_ratio_cuped_statistic(*arm) for arm in arms)

    effect, theta = ratio_cuped_effect(treatment, control, relative=True)

    (mt, dt_, mpt, dpt), (mc, dc, mpc, dpc) = arms
    ratio_c = mc.mean() / dc.mean()
    adjusted_t = mt.mean() / dt_.mean() - theta * mpt.mean() / dpt.mean()
    adjusted_c = ratio_c - theta * mpc.mean() / dpc.mean()
    lift = (adjusted_t - adjusted_c) / ratio_c
    post_t, pre_t = _influence(*arms[0])
    post_c, pre_c = _influence(*arms[1])
    influence_t = (post_t - theta * pre_t) / ratio_c
    influence_c = -(post_c - theta * pre_c) / ratio_c - lift * post_c / ratio_c
    variance = np.var(influence_t, ddof=1) / len(mt) + np.var(influence_c, ddof=1) / len(mc)
    assert effect.estimate == pytest.approx(lift, rel=1e-9)
    assert effect.variance == pytest.approx(variance, rel=1e-9)


def test_ratio_cuped_without_a_varying_covariate_is_the_plain_ratio():
    m, d = np.array([1.0, 2.0, 3.0, 5.0]), np.array([1.0, 1.0, 2.0, 2.0])
    flat = np.ones(4)
    arm = _ratio_cuped_statistic(m, d, flat, flat)

    assert ratio_cuped_theta(arm, arm) == 0.0


def _ratio_cuped_row(key, m, d, mp, dp) -> dict:
    statistic = _ratio_cuped_statistic(m, d, mp, dp)
    fields = {field: getattr(statistic, field) for field in statistic.__dataclass_fields__ if field != "n"}
    return {"key": key, "number_of_samples": len(m), **fields}


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
def test_a_ratio_metric_with_cuped_is_tested_on_the_adjusted_effect(relative):
    rng = np.random.default_rng(5)
    arms = [_ratio_cuped_arm(rng, 1500, 0.03), _ratio_cuped_arm(rng, 1400, 0.0)]
    rows = [_ratio_cuped_row("test", *arms[0]), _ratio_cuped_row("control", *arms[1])]
    config = {"method": "frequentist", "cuped": True, "difference_type": None if relative else "absolute"}

    (variant,) = compute_metric_result(rows, metric_type="ratio", stats_config=config)["variant_results"]

    # Independently: influence functions of the adjusted ratios, θ pooled over both arms, Welch's t.
    influences = [_influence(*arm) for arm in arms]
    theta = sum(np.cov(post, pre)[0, 1] for post, pre in influences) / sum(np.var(pre, ddof=1) for _, pre in influences)
    (mt, dt_, mpt, dpt), (mc, dc, mpc, dpc) = arms
    ratio_c = mc.mean() / dc.mean()
    difference = (mt.mean() / dt_.mean() - theta * mpt.mean() / dpt.mean()) - (
        ratio_c - theta * mpc.mean() / dpc.mean()
    )
    (post_t, pre_t), (post_c, pre_c) = influences
    influence_t, influence_c = post_t - theta * pre_t, post_c - theta * pre_c
    if relative:
        effect = difference / ratio_c
        influence_t, influence_c = influence_t / ratio_c, -influence_c / ratio_c - effect * post_c / ratio_c
    else:
        effect, influence_c = difference, -influence_c
    terms = np.var(influence_t, ddof=1) / len(mt), np.var(influence_c, ddof=1) / len(mc)
    se = math.sqrt(sum(terms))
    df = sum(terms) ** 2 / (terms[0] ** 2 / (len(mt) - 1) + terms[1] ** 2 / (len(mc) - 1))
    half_width = stats.t.ppf(0.975, df) * se
    assert variant["effect"] == pytest.approx(effect, rel=1e-6)
    assert variant["p_value"] == pytest.approx(2 * stats.t.sf(abs(effect / se), df), rel=1e-6)
    assert variant["confidence_interval"] == pytest.approx([effect - half_width, effect + half_width], rel=1e-6)
    plain = compute_metric_result(rows, metric_type="ratio", stats_config={**config, "cuped": False})
    (plain_variant,) = plain["variant_results"]
    plain_width = plain_variant["confidence_interval"][1] - plain_variant["confidence_interval"][0]
    assert 2 * half_width < plain_width

    (bayesian,) = compute_metric_result(rows, metric_type="ratio", stats_config={**config, "method": "bayesian"})[
        "variant_results"
    ]
    assert bayesian["chance_to_win"] == pytest.approx(stats.norm.cdf(effect / se), rel=1e-6)
    assert bayesian["credible_interval"] == pytest.approx(list(stats.norm.interval(0.95, effect, se)), rel=1e-6)


def test_ratio_cuped_without_pre_exposure_denominators_is_the_plain_ratio():
    rng = np.random.default_rng(9)
    arms = [_ratio_cuped_arm(rng, 300, 0.03), _ratio_cuped_arm(rng, 300, 0.0)]
    rows = [_ratio_cuped_row("test", *arms[0]), _ratio_cuped_row("control", *arms[1])]
    rows[1] |= {field: 0.0 for field in rows[1] if "covariate" in field}
    config = {"method": "frequentist", "cuped": True}

    cuped = compute_metric_result(rows, metric_type="ratio", stats_config=config)
    plain = compute_metric_result(rows, metric_type="ratio", stats_config={**config, "cuped": False})

    assert cuped == plain


def test_experiment_wide_correction_over_metrics_and_variants():
    p_values = [[0.004, 0.03, 0.20], [0.012, 0.45, 0.049]]
    results = [
        [{"method": "frequentist", "effect": 0.1, "p_value": p, "confidence_interval": [0.0, 0.2]} for p in metric]
        for metric in p_values
    ]
    results[1].append({"method": "bayesian", "chance_to_win": 0.97, "significant": True})

    holm = experiment_wide_correction(results, "holm")
    bh = experiment_wide_correction(results, "bh")

    def adjusted(corrected):
        return [v["p_value_adjusted"] for metric in corrected for v in metric if "p_value_adjusted" in v]

    assert adjusted(holm) == pytest.approx([0.024, 0.12, 0.4, 0.06, 0.45, 0.147], abs=1e-12)
    assert adjusted(bh) == pytest.approx([0.024, 0.06, 0.24, 0.036, 0.45, 0.0735], abs=1e-12)
    assert [v["significant"] for v in holm[0]] == [True, False, False]
    assert holm[1][3] == results[1][3]
    assert results[0][0].keys() == {"method", "effect", "p_value", "confidence_interval"}


def test_the_adjusted_confidence_interval_worked_example():
    ci = adjusted_confidence_interval(0.04, (0.01, 0.07), 0.03)

    half_width = stats.norm.ppf(0.975) * 0.04 / stats.norm.ppf(1 - 0.03 / 2)
    assert ci == pytest.approx((0.04 - half_width, 0.04 + half_width), abs=1e-12)
    assert (round(ci[0], 4), round(ci[1], 4)) == (0.0039, 0.0761)
    assert adjusted_confidence_interval(0.04, (-1.0, 1.0), 0.03) == (-1.0, 1.0)
    assert adjusted_confidence_interval(0.04, (0.01, 0.07), 0.9999999) == (-math.inf, math.inf)


def test_untested_members_of_the_family_count_as_p_equal_to_one():
    results = [
        [{"method": "frequentist", "effect": 0.1, "p_value": p, "confidence_interval": [0.0, 0.2]}]
        for p in (0.01, 0.04)
    ]

    holm = experiment_wide_correction(results, "holm", untested=2)
    bh = experiment_wide_correction(results, "bh", untested=2)

    # Holm over (0.01, 0.04, 1, 1): 4·0.01, 3·0.04; BH: 4·0.01/1, 4·0.04/2.
    assert [metric[0]["p_value_adjusted"] for metric in holm] == pytest.approx([0.04, 0.12], abs=1e-12)
    assert [metric[0]["p_value_adjusted"] for metric in bh] == pytest.approx([0.04, 0.08], abs=1e-12)


@pytest.mark.parametrize("direction", [1, -1], ids=["greater", "less"])
def test_a_one_sided_interval_widens_its_finite_end(direction):
    effect, p_adjusted = direction * 0.04, 0.03
    ci = (0.01, math.inf) if direction > 0 else (-math.inf, -0.01)

    lower, upper = adjusted_confidence_interval(effect, ci, p_adjusted)

    implied_se = 0.04 / stats.norm.ppf(1 - p_adjusted)
    bound = effect - direction * stats.norm.ppf(0.95) * implied_se
    assert (lower, upper) == (
        (pytest.approx(bound, abs=1e-12), math.inf) if direction > 0 else (-math.inf, pytest.approx(bound, abs=1e-12))
    )
    assert round(abs(bound), 6) == 0.005018
    # Narrower than the raw interval: the raw one is kept; an adjusted p of 0.5 or more no longer backs the sign.
    assert adjusted_confidence_interval(
        effect, (-1.0, math.inf) if direction > 0 else (-math.inf, 1.0), p_adjusted
    ) == ((-1.0, math.inf) if direction > 0 else (-math.inf, 1.0))
    assert adjusted_confidence_interval(effect, ci, 0.6) == (-math.inf, math.inf)


def test_open_ends_are_null_in_the_corrected_results():
    results = [[{"method": "frequentist", "effect": 0.04, "p_value": 0.02, "confidence_interval": [0.01, None]}]]

    ((variant,),) = experiment_wide_correction(results, "holm", untested=1)

    assert variant["p_value_adjusted"] == pytest.approx(0.04)
    implied_se = 0.04 / stats.norm.ppf(1 - 0.04)
    assert variant["confidence_interval_adjusted"] == [pytest.approx(0.04 - stats.norm.ppf(0.95) * implied_se), None]
    ((hopeless,),) = experiment_wide_correction([[{**results[0][0], "p_value": 0.9}]], "holm", untested=1)
    assert hopeless["confidence_interval_adjusted"] == [None, None]


def test_mid_experiment_power_worked_example():
    result = mid_experiment_power(effect_variance=0.0009, units_so_far=10_000, daily_units=1000, target_mde=0.05)

    assert result.power == pytest.approx(power_at(effect_variance=0.0009, target_mde=0.05, alpha=0.05), abs=1e-12)
    assert round(result.power, 3) == 0.385
    expected_scale = optimize.brentq(
        lambda s: power_at(effect_variance=0.0009, target_mde=0.05, alpha=0.05, scale=s) - 0.8, 0, 100, xtol=1e-12
    )
    assert result.scaling_factor == pytest.approx(expected_scale, abs=1e-4)
    assert (round(result.scaling_factor, 4), result.additional_units, result.days_needed) == (1.8256, 18_256, 19)


def test_an_already_powered_experiment_needs_nothing_more():
    result = mid_experiment_power(effect_variance=1e-5, units_so_far=10_000, daily_units=1000, target_mde=0.05)

    assert (result.scaling_factor, result.additional_units, result.days_needed) == (0.0, 0, 0)


def test_floored_weights_and_flag_percentages_worked_example():
    weights = floored_weights([0.05, 0.30, 0.65], 0.01)

    assert weights == pytest.approx([0.0585, 0.301, 0.6405], abs=1e-12)
    assert flag_percentages(weights) == [6, 30, 64]
    assert flag_percentages([0.001, 0.499, 0.5]) == [1, 49, 50]
    assert floored_weights([0.2, 0.8], 0.6) == [0.5, 0.5]


def test_bandit_weights_follow_the_posteriors_and_are_reproducible():
    arms = [BanditArm(n=2000, mean=0.10, variance=0.09), BanditArm(n=2000, mean=0.11, variance=0.0979)]

    first = bandit_weights(arms, seed=42)
    second = bandit_weights(arms, seed=42)

    assert first == second
    difference = 0.01 / math.sqrt(0.09 / 2000 + 0.0979 / 2000)
    assert first.best_arm_probabilities[1] == pytest.approx(stats.norm.cdf(difference), abs=0.02)
    assert sum(first.weights) == pytest.approx(1.0, abs=1e-12)
    inverse = bandit_weights(arms, seed=42, inverse=True)
    assert inverse.best_arm_probabilities[0] == pytest.approx(first.best_arm_probabilities[1], abs=0.02)


def test_top_two_sampling_gives_every_arm_of_two_the_same_share():
    arms = [BanditArm(n=500, mean=0.1, variance=0.09), BanditArm(n=500, mean=0.3, variance=0.21)]

    assert bandit_weights(arms, seed=1, top_two=True).weights == pytest.approx([0.5, 0.5], abs=1e-12)


def test_bandit_weights_wait_for_a_hundred_units_per_arm():
    arms = [BanditArm(n=99, mean=0.1, variance=0.09), BanditArm(n=500, mean=0.3, variance=0.21)]

    result = bandit_weights(arms, seed=3)

    assert (result.weights, result.update_message) == (None, NOT_ENOUGH_UNITS)


@pytest.mark.parametrize(
    ("counts", "p_value", "status"),
    [({"control": 7, "test": 8}, 1e-9, "not-enough-traffic"), ({"control": 500, "test": 600}, 0.0001, "unhealthy")],
)
def test_srm_status(counts, p_value, status):
    assert srm_status(counts, p_value) == status


def test_multiple_exposures_summary():
    assert multiple_exposures_summary(multiple=20, total=1000) == {"count": 20, "share": 0.02, "status": "unhealthy"}
    assert multiple_exposures_summary(multiple=5, total=1000)["status"] == "healthy"
    assert multiple_exposures_summary(multiple=1, total=5)["status"] == "not-enough-traffic"


def test_health_findings_collect_what_applies_most_severe_first():
    findings = health_findings(
        exposures={"control": 0, "test": 0},
        hours_since_launch=30,
        metric_count=0,
        flag_active=True,
        variant_percentages={"control": 0, "test": 100},
    )

    assert findings == [
        {"code": "zero_exposures", "severity": "critical", "message": messages.HEALTH_ZERO_EXPOSURES},
        {"code": "no_metric", "severity": "warning", "message": messages.HEALTH_NO_METRIC},
        {
            "code": "variant_forced_while_running",
            "severity": "warning",
            "message": messages.HEALTH_VARIANT_FORCED_WHILE_RUNNING.format(variant="test"),
        },
    ]


def test_health_findings_for_a_skewed_split_with_many_multiple_exposures():
    findings = health_findings(
        exposures={"control": 600, "test": 400}, multiple=30, srm_p_value=1e-10, flag_active=False
    )

    assert [finding["code"] for finding in findings] == [
        "sample_ratio_mismatch",
        "multiple_exposures",
        "flag_off_while_running",
    ]
    assert health_findings(exposures={"control": 600, "test": 600}, srm_p_value=0.5, multiple=0) == []


ROWS = [
    {"key": "control", "number_of_samples": 1000, "sum": 5000.0, "sum_squares": 52000.0},
    {"key": "test", "number_of_samples": 1000, "sum": 5300.0, "sum_squares": 56500.0},
]


def test_a_one_sided_config_gives_an_interval_open_at_one_end():
    config = {"method": "frequentist", "frequentist": {"alternative": "greater"}}

    (variant,) = compute_metric_result(ROWS, metric_type="mean", stats_config=config)["variant_results"]

    treatment, control = SampleMean(1000, 5300.0, 56500.0), SampleMean(1000, 5000.0, 52000.0)
    expected = frequentist_test(treatment, control, alternative="greater")
    assert variant["p_value"] == pytest.approx(expected.p_value, abs=1e-12)
    assert variant["confidence_interval"] == [pytest.approx(expected.ci[0], abs=1e-12), None]


def test_a_configured_prior_shrinks_the_lift():
    config = {"bayesian": {"prior": {"mean": 0, "stddev": 0.01}}}

    (informed,) = compute_metric_result(ROWS, metric_type="mean", stats_config=config)["variant_results"]
    (flat,) = compute_metric_result(ROWS, metric_type="mean", stats_config={})["variant_results"]

    expected = bayesian_test(
        SampleMean(1000, 5300.0, 56500.0), SampleMean(1000, 5000.0, 52000.0), prior=GaussianPrior(0, 0.01)
    )
    assert informed["chance_to_win"] == pytest.approx(expected.chance_to_win, abs=1e-12)
    assert informed["chance_to_win"] < flat["chance_to_win"]
    improper = {"bayesian": {"prior": {"proper": False, "stddev": 0.01}}}
    assert compute_metric_result(ROWS, metric_type="mean", stats_config=improper)["variant_results"] == [flat]


# Independent references (closed forms evaluated with scipy and numpy, never the engine's helpers), to 1e-6.


def _normal_normal_posterior(estimate: float, variance: float, prior_mean: float, prior_variance: float):
    precision = 1 / variance + 1 / prior_variance
    return (estimate / variance + prior_mean / prior_variance) / precision, math.sqrt(1 / precision)


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
def test_a_metric_prior_replaces_the_experiment_default_against_the_closed_form_posterior(relative):
    config = {"difference_type": None if relative else "absolute", "bayesian": {"prior": {"mean": 0.5, "stddev": 1}}}
    metric_prior = MetricPrior(GaussianPrior(mean=0.02, stddev=0.05))

    result = compute_metric_result(ROWS, metric_type="mean", stats_config=config, metric_prior=metric_prior)

    (variant,) = result["variant_results"]
    m_t, m_c = 5300 / 1000, 5000 / 1000
    v_t, v_c = (56500 - 5300**2 / 1000) / 999, (52000 - 5000**2 / 1000) / 999
    if relative:
        estimate = (m_t - m_c) / m_c
        variance = v_t / (1000 * m_c**2) + m_t**2 * v_c / (1000 * m_c**4)
        prior_mean, prior_variance = 0.02, 0.05**2
    else:
        estimate, variance = m_t - m_c, v_t / 1000 + v_c / 1000
        prior_mean, prior_variance = 0.02 * m_c, 0.05**2 * m_c**2
    mean, sd = _normal_normal_posterior(estimate, variance, prior_mean, prior_variance)
    assert variant["chance_to_win"] == pytest.approx(stats.norm.cdf(mean / sd), abs=1e-6)
    assert variant["credible_interval"] == pytest.approx(list(stats.norm.interval(0.95, mean, sd)), abs=1e-6)
    default = compute_metric_result(ROWS, metric_type="mean", stats_config=config)["variant_results"][0]
    assert default["chance_to_win"] != pytest.approx(variant["chance_to_win"], abs=1e-3)


def test_a_flat_metric_prior_overrides_a_proper_experiment_default():
    config = {"bayesian": {"prior": {"mean": 0, "stddev": 0.01}}}

    flat = compute_metric_result(ROWS, metric_type="mean", stats_config=config, metric_prior=MetricPrior(None))

    assert flat == compute_metric_result(ROWS, metric_type="mean", stats_config={})
    (variant,) = flat["variant_results"]
    estimate = (5.3 - 5.0) / 5.0
    variance = ((56500 - 5300**2 / 1000) / 999) / (1000 * 25) + 5.3**2 * ((52000 - 5000**2 / 1000) / 999) / (1000 * 625)
    assert variant["chance_to_win"] == pytest.approx(stats.norm.cdf(estimate / math.sqrt(variance)), abs=1e-6)


def _power_reference(variance: float, mde: float, alpha: float, tests: int, scale: float) -> float:
    """1 − Φ(z − MDE/σ) + Φ(−z − MDE/σ), σ² = σ̂²/(1 + s), z = Φ⁻¹(1 − α/2T)."""
    sd = math.sqrt(variance / (1 + scale))
    z = stats.norm.isf(alpha / (2 * tests))
    return stats.norm.sf(z - mde / sd) + stats.norm.cdf(-z - mde / sd)


@pytest.mark.parametrize(
    ("variance", "mde", "alpha", "goal_metrics", "variants", "corrected"),
    [(0.0009, 0.05, 0.05, 1, 2, False), (0.0004, 0.03, 0.1, 2, 3, True), (0.002, 0.08, 0.05, 3, 2, False)],
    ids=["worked-example", "corrected-two-metrics-three-variants", "three-metrics-uncorrected"],
)
def test_mid_experiment_power_against_an_independent_root(variance, mde, alpha, goal_metrics, variants, corrected):
    tests = (variants - 1) * goal_metrics if corrected else 1
    target = 0.8 ** (1 / goal_metrics)

    result = mid_experiment_power(
        effect_variance=variance, units_so_far=10_000, daily_units=1000, target_mde=mde, alpha=alpha,
        goal_metrics=goal_metrics, variants=variants, corrected=corrected,
    )  # fmt: skip

    scale = optimize.brentq(lambda s: _power_reference(variance, mde, alpha, tests, s) - target, 0, 1e6, xtol=1e-13)
    assert result.power == pytest.approx(_power_reference(variance, mde, alpha, tests, 0.0), abs=1e-6)
    assert result.target_power == pytest.approx(target, abs=1e-12)
    assert result.scaling_factor == pytest.approx(scale, abs=1e-6)
    assert result.additional_units == math.ceil(scale * 10_000)
    assert result.days_needed == math.ceil(math.ceil(scale * 10_000) / 1000)


QUANTILE_CONTROL = {"n": 2000, "nu": 0.9, "quantile": 12.0, "lower": 11.4, "upper": 12.7, "nstar": 1600}
QUANTILE_TREATMENT = {"n": 2100, "nu": 0.9, "quantile": 11.1, "lower": 10.6, "upper": 11.7, "nstar": 1600}


def _quantile_unit_variance(arm: dict) -> float:
    """v = (n*/n)(n − 1)((U − L)/2z)², z = Φ⁻¹(0.975)."""
    z = stats.norm.ppf(0.975)
    return arm["nstar"] / arm["n"] * (arm["n"] - 1) * ((arm["upper"] - arm["lower"]) / (2 * z)) ** 2


def _quantile_reference(treatment: dict, control: dict, *, relative: bool):
    """(estimate, se, Welch df) of the quantile difference from the closed forms of spec/analysis.md §2."""
    v_t, v_c = _quantile_unit_variance(treatment), _quantile_unit_variance(control)
    a, b = v_t / treatment["n"], v_c / control["n"]
    df = (a + b) ** 2 / (a**2 / (treatment["n"] - 1) + b**2 / (control["n"] - 1))
    q_t, q_c = treatment["quantile"], control["quantile"]
    if not relative:
        return q_t - q_c, math.sqrt(a + b), df
    return (q_t - q_c) / q_c, math.sqrt(a / q_c**2 + q_t**2 * b / q_c**4), df


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
def test_the_unit_quantile_p_value_and_interval_against_the_closed_form(relative):
    estimate, se, df = _quantile_reference(QUANTILE_TREATMENT, QUANTILE_CONTROL, relative=relative)

    result = frequentist_test(
        QuantileStatistic(**QUANTILE_TREATMENT), QuantileStatistic(**QUANTILE_CONTROL), relative=relative
    )

    assert result.effect == pytest.approx(estimate, abs=1e-12)
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(estimate / se), df), abs=1e-6)
    assert result.ci == pytest.approx(stats.t.interval(0.95, df, loc=estimate, scale=se), abs=1e-6)


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
def test_the_bayesian_quantile_result_against_the_closed_form_posterior(relative):
    estimate, se, _df = _quantile_reference(QUANTILE_TREATMENT, QUANTILE_CONTROL, relative=relative)
    treatment, control = QuantileStatistic(**QUANTILE_TREATMENT), QuantileStatistic(**QUANTILE_CONTROL)

    flat = bayesian_test(treatment, control, relative=relative)
    informed = bayesian_test(treatment, control, relative=relative, prior=GaussianPrior(mean=0.01, stddev=0.04))

    assert flat.chance_to_win == pytest.approx(stats.norm.cdf(estimate / se), abs=1e-6)
    assert flat.ci == pytest.approx(stats.norm.interval(0.95, estimate, se), abs=1e-6)
    scale = 1 if relative else QUANTILE_CONTROL["quantile"]
    mean, sd = _normal_normal_posterior(estimate, se**2, 0.01 * scale, (0.04 * scale) ** 2)
    assert (informed.effect, informed.se) == (pytest.approx(mean, abs=1e-9), pytest.approx(sd, abs=1e-9))
    assert informed.chance_to_win == pytest.approx(stats.norm.cdf(mean / sd), abs=1e-6)
    assert informed.ci == pytest.approx(stats.norm.interval(0.95, mean, sd), abs=1e-6)
    assert informed.risk == pytest.approx(
        (mean * stats.norm.cdf(mean / sd) + sd * stats.norm.pdf(mean / sd),
         -mean * stats.norm.cdf(-mean / sd) + sd * stats.norm.pdf(mean / sd)),
        abs=1e-6,
    )  # fmt: skip


def _event_quantile_arm(rng, units: int, scale: float) -> tuple[dict, float]:
    """Raw events (1–12 per unit, lognormal values correlated within a unit) summarised as the database does for an
    event-level P75, and q̂'s variance computed without the engine: the cluster-robust (sandwich) variance of the
    share of events at or below q̂, K/(K − 1)·Σ(S_i − p̂N_i)²/(ΣN)², over the density at q̂ squared."""
    nu = 0.75
    counts = rng.integers(1, 13, size=units)
    unit_effect = rng.normal(0, 0.6, size=units)  # values within a unit are correlated: clustering matters
    values = [np.exp(unit_effect[i] + rng.normal(0, 0.5, size=count)) * scale for i, count in enumerate(counts)]
    everything = np.concatenate(values)
    n = everything.size
    nstar = n
    z = stats.norm.ppf(0.975)
    half_width = z * math.sqrt(nu * (1 - nu) / nstar)
    quantile, lower, upper = np.quantile(everything, [nu, nu - half_width, nu + half_width])
    below = np.array([np.sum(unit_values <= quantile) for unit_values in values], dtype=float)
    arm = {
        "n": n, "nu": nu, "quantile": float(quantile), "lower": float(lower), "upper": float(upper), "nstar": nstar,
        "n_clusters": units, "sum": below.sum(), "sum_squares": (below**2).sum(), "denominator_sum": counts.sum(),
        "denominator_sum_squares": (counts.astype(float) ** 2).sum(),
        "numerator_denominator_sum_product": (below * counts).sum(),
    }  # fmt: skip
    share = below.sum() / counts.sum()
    sandwich = units / (units - 1) * np.sum((below - share * counts) ** 2) / counts.sum() ** 2
    # 1/f(q)² from the bounds: (U − L)/2z ≈ √(ν(1 − ν)/n*)/f, with GrowthBook's (n − 1)/n small-sample factor.
    inverse_density_squared = ((upper - lower) / (2 * z)) ** 2 * nstar / (nu * (1 - nu)) * (n - 1) / n
    return arm, float(inverse_density_squared * sandwich)


def test_the_event_quantile_variance_with_several_events_per_unit_is_the_cluster_robust_one():
    rng = np.random.default_rng(20250101)
    control, control_variance = _event_quantile_arm(rng, 800, 1.0)
    treatment, treatment_variance = _event_quantile_arm(rng, 850, 1.1)
    assert control["n"] > 3 * control["n_clusters"]  # several events per unit

    control_statistic = QuantileClusteredStatistic(**control)
    treatment_statistic = QuantileClusteredStatistic(**treatment)

    assert control_statistic.variance / control["n"] == pytest.approx(control_variance, rel=1e-9)
    assert treatment_statistic.variance / treatment["n"] == pytest.approx(treatment_variance, rel=1e-9)
    # Clustering widens the interval over treating every event as independent.
    unclustered = QuantileStatistic(**{key: control[key] for key in ("n", "nu", "quantile", "lower", "upper", "nstar")})
    assert control_statistic.variance > 1.5 * unclustered.variance
    result = frequentist_test(treatment_statistic, control_statistic, relative=False)
    estimate = treatment["quantile"] - control["quantile"]
    se = math.sqrt(treatment_variance + control_variance)
    a, b = treatment_variance, control_variance
    df = (a + b) ** 2 / (a**2 / (treatment["n"] - 1) + b**2 / (control["n"] - 1))
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(estimate / se), df), abs=1e-6)
    assert result.ci == pytest.approx(stats.t.interval(0.95, df, loc=estimate, scale=se), abs=1e-6)


def test_the_package_exports_the_analysis_statistics_and_documents_each_with_its_fields_and_submodule():
    import dataclasses

    import experiments.stats as package
    from experiments.stats import (  # noqa: F401 (the import is the check)
        BanditArm,
        GaussianPrior,
        MetricPrior,
        MidExperimentPower,
        QuantileClusteredStatistic,
        QuantileStatistic,
        RatioCupedStatistic,
        bandit_weights,
        experiment_wide_correction,
        flag_percentages,
        health_findings,
        mid_experiment_power,
        multiple_exposures_summary,
        period_weighted_row,
        ratio_cuped_comparison,
        srm_status,
    )

    bullets = package.__doc__.split("\n- ")
    for name in package.__all__:
        value = getattr(package, name)
        if not callable(value):
            continue  # constants (failure codes, choice tuples)
        # The bullet that lists its fields or arguments, else the one that names it.
        bullet = next((bullet for bullet in bullets if re.search(rf"\b{name}\(", bullet)), None) or next(
            (bullet for bullet in bullets if re.search(rf"\b{name}\b", bullet)), None
        )
        assert bullet is not None, f"{name} is not listed in the package docstring"
        assert f"[{value.__module__.rsplit('.', 1)[1]}]" in bullet, f"{name}'s submodule is not named"
        if dataclasses.is_dataclass(value):
            for field in dataclasses.fields(value):
                assert field.name in bullet, f"{name}.{field.name} is not listed"
