"""Tests of the statistics engine: reference numbers, formulas against NumPy, and the result shape."""

import numpy as np
import pytest

from experiments import messages
from experiments.stats import (
    BASELINE_MEAN_IS_ZERO,
    NOT_ENOUGH_EXPOSURES,
    NOT_ENOUGH_METRIC_DATA,
    CupedStatistic,
    Proportion,
    Ratio,
    SampleMean,
    StatsConfig,
    adjust_p_values,
    apply_multiple_testing_correction,
    bayesian_test,
    compute_metric_result,
    cuped_adjust,
    frequentist_test,
    srm_check,
    srm_p_value,
    validation_failures,
)
from experiments.stats.config import StatsConfigError
from experiments.stats.methods import STATS_METHODS

CONTROL_MEAN = SampleMean(n=3407, sum=1396.87, sum_squares=52377.9767)
TREATMENT_MEAN = SampleMean(n=3461, sum=2422.7, sum_squares=134698.29)


def sums(values):
    return {"n": len(values), "sum": float(values.sum()), "sum_squares": float((values**2).sum())}


# Reference numbers (stats.md) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("treatment", "control", "relative", "effect", "ci", "p_value"),
    [
        (TREATMENT_MEAN, CONTROL_MEAN, True, 0.70732, (-0.03526, 1.44989), 0.06191),
        (TREATMENT_MEAN, CONTROL_MEAN, False, 0.29, (0.04538, 0.53462), 0.02016),
        (Proportion(n=30, successes=16), Proportion(n=28, successes=14), True, 0.06667, (-0.47767, 0.61101), 0.80707),
    ],
)
def test_welch_reference_numbers(treatment, control, relative, effect, ci, p_value):
    result = frequentist_test(treatment, control, relative=relative)

    assert result.effect == pytest.approx(effect, abs=1e-5)
    assert result.ci == pytest.approx(ci, abs=1e-5)
    assert result.p_value == pytest.approx(p_value, abs=1e-5)
    assert result.significant == (p_value < 0.05)


def test_bayesian_flat_prior_reference_numbers():
    result = bayesian_test(Proportion(n=100, successes=51), Proportion(n=100, successes=49))

    assert result.effect == pytest.approx(0.04082, abs=1e-5)
    assert result.ci == pytest.approx((-0.24779, 0.32943), abs=1e-5)
    assert result.chance_to_win == pytest.approx(0.60918, abs=1e-5)
    assert result.risk == pytest.approx((0.0814, 0.04058), abs=1e-5)
    assert result.significant is False


def test_sequential_reference_numbers_sample_mean():
    control = SampleMean(n=3000, sum=1396.87, sum_squares=52377.9767)

    result = frequentist_test(TREATMENT_MEAN, control, sequential=True, sequential_tuning=1000)

    assert result.effect == pytest.approx(0.50336, abs=1e-5)
    assert result.ci == pytest.approx((-0.55844, 1.56516), abs=1e-5)
    assert result.p_value == 1.0
    assert result.significant is False


def test_sequential_reference_numbers_proportions_has_a_tiny_but_positive_p_value():
    treatment, control = Proportion(n=3461, successes=2422), Proportion(n=3000, successes=1396)

    result = frequentist_test(treatment, control, sequential=True)

    assert result.effect == pytest.approx(0.50386, abs=1e-5)
    assert result.ci == pytest.approx((0.40098, 0.60675), abs=1e-5)
    assert 0 < result.p_value < 1e-40
    assert result.significant is True


@pytest.mark.parametrize(
    ("counts", "weights", "p_value"),
    [
        ((1000, 1200), (0.5, 0.5), 2.0079e-5),
        ((5100, 4900), (0.5, 0.5), 0.0455003),
        ((5100, 4900), (50, 50), 0.0455003),
    ],
)
def test_srm_reference_numbers(counts, weights, p_value):
    assert srm_p_value(counts, weights) == pytest.approx(p_value, rel=1e-4)


@pytest.mark.parametrize(
    ("method", "p_values", "adjusted"),
    [
        ("holm", [0.01, 0.04, 0.03, 0.005, 0.55, 0.6], [0.05, 0.12, 0.12, 0.03, 1, 1]),
        (
            "bh",
            [0.898, 0.138, 0.007, 0.964, 0.538, 0.006, 0.138],
            [0.964, 0.2415, 0.0245, 0.964, 0.7532, 0.0245, 0.2415],
        ),
    ],
)
def test_multiple_testing_reference_numbers(method, p_values, adjusted):
    assert adjust_p_values(p_values, method) == pytest.approx(adjusted, abs=1e-4)


# Formulas against NumPy ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_adjusted_p_values_are_monotone_capped_and_never_below_raw(method):
    raw = np.random.default_rng(7).uniform(size=40)

    adjusted = np.array(adjust_p_values(raw, method))

    order = np.argsort(raw)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= raw)
    assert np.all(adjusted <= 1)


def test_sample_mean_matches_numpy():
    values = np.array([1.0, 4.0, 2.5, 0.0, 7.0, 3.0])

    statistic = SampleMean(**sums(values))

    assert statistic.mean == pytest.approx(values.mean())
    assert statistic.variance == pytest.approx(values.var(ddof=1))


def test_ratio_delta_method_variance_matches_numpy():
    numerator = np.array([3.0, 0.0, 5.0, 2.0, 8.0, 1.0, 4.0])
    denominator = np.array([2.0, 1.0, 3.0, 2.0, 4.0, 1.0, 3.0])
    ratio = Ratio(
        n=len(numerator),
        numerator_sum=numerator.sum(),
        numerator_sum_squares=(numerator**2).sum(),
        denominator_sum=denominator.sum(),
        denominator_sum_squares=(denominator**2).sum(),
        numerator_denominator_sum_product=(numerator * denominator).sum(),
    )
    # Delta method as a quadratic form: gradient of M/D at the means, times the per-unit covariance.
    gradient = np.array([1 / denominator.mean(), -numerator.mean() / denominator.mean() ** 2])
    expected_variance = gradient @ np.cov(numerator, denominator, ddof=1) @ gradient

    assert ratio.mean == pytest.approx(numerator.sum() / denominator.sum())
    assert ratio.variance == pytest.approx(expected_variance)


def simulated_cuped_arms(seed=42, n=2000, lift=0.3):
    """Per-unit (metric, covariate) arrays for two arms whose metric tracks its pre-exposure value."""
    rng = np.random.default_rng(seed)
    arms = {}
    for name, shift in (("treatment", lift), ("control", 0.0)):
        covariate = rng.gamma(shape=2.0, scale=5.0, size=n)
        metric = 0.8 * covariate + rng.normal(2.0 + shift, 2.0, size=n)
        arms[name] = (metric, covariate)
    return arms


def cuped_statistic(metric, covariate):
    return CupedStatistic(
        n=len(metric),
        sum=metric.sum(),
        sum_squares=(metric**2).sum(),
        covariate_sum=covariate.sum(),
        covariate_sum_squares=(covariate**2).sum(),
        sum_products=(metric * covariate).sum(),
    )


def test_cuped_theta_and_adjusted_arms_match_numpy():
    arms = simulated_cuped_arms()
    all_metric = np.concatenate([arms["treatment"][0], arms["control"][0]])
    all_covariate = np.concatenate([arms["treatment"][1], arms["control"][1]])
    expected_theta = np.cov(all_metric, all_covariate, ddof=1)[0, 1] / all_covariate.var(ddof=1)

    treatment, control, theta = cuped_adjust(cuped_statistic(*arms["treatment"]), cuped_statistic(*arms["control"]))

    assert theta == pytest.approx(expected_theta)
    for adjusted, (metric, covariate) in ((treatment, arms["treatment"]), (control, arms["control"])):
        assert adjusted.mean == pytest.approx((metric - theta * covariate).mean())
        assert adjusted.variance == pytest.approx((metric - theta * covariate).var(ddof=1))
        assert adjusted.unadjusted_mean == pytest.approx(metric.mean())


def test_cuped_relative_effect_divides_by_the_unadjusted_control_mean():
    arms = simulated_cuped_arms()
    treatment, control, _ = cuped_adjust(cuped_statistic(*arms["treatment"]), cuped_statistic(*arms["control"]))
    control_mean = arms["control"][0].mean()

    result = frequentist_test(treatment, control)

    assert result.effect == pytest.approx((treatment.mean - control.mean) / control_mean)
    expected_variance = treatment.variance / (treatment.n * control_mean**2) + treatment.mean**2 * control.variance / (
        control.n * control_mean**4
    )
    assert result.se == pytest.approx(np.sqrt(expected_variance))


@pytest.mark.parametrize("test", [frequentist_test, bayesian_test])
def test_cuped_shrinks_the_interval(test):
    arms = simulated_cuped_arms()
    plain = test(SampleMean(**sums(arms["treatment"][0])), SampleMean(**sums(arms["control"][0])))
    treatment, control, _ = cuped_adjust(cuped_statistic(*arms["treatment"]), cuped_statistic(*arms["control"]))

    adjusted = test(treatment, control)

    plain_width, adjusted_width = plain.ci[1] - plain.ci[0], adjusted.ci[1] - adjusted.ci[0]
    assert adjusted_width < 0.6 * plain_width


def test_cuped_theta_is_zero_when_the_covariate_is_constant():
    metric = np.array([1.0, 3.0, 2.0, 5.0])
    covariate = np.full(4, 7.0)

    treatment, control, theta = cuped_adjust(cuped_statistic(metric, covariate), cuped_statistic(metric, covariate))

    assert theta == 0.0
    assert treatment.mean == pytest.approx(metric.mean())
    assert treatment.variance == pytest.approx(metric.var(ddof=1))


def test_gaussian_prior_pulls_the_posterior_towards_the_prior_mean():
    treatment, control = Proportion(n=100, successes=51), Proportion(n=100, successes=49)
    flat = bayesian_test(treatment, control)

    informed = bayesian_test(treatment, control, prior_mean=0.0, prior_variance=0.01)

    data_precision, prior_precision = 1 / flat.se**2, 1 / 0.01
    expected_mean = flat.effect * data_precision / (data_precision + prior_precision)
    assert informed.effect == pytest.approx(expected_mean)
    assert 0 < informed.effect < flat.effect
    assert informed.se == pytest.approx((data_precision + prior_precision) ** -0.5)
    assert informed.se < flat.se
    assert informed.chance_to_win < flat.chance_to_win


@pytest.mark.parametrize("test", [frequentist_test, bayesian_test])
def test_zero_variance_arms_give_exact_results(test):
    constant = SampleMean(n=100, sum=100.0, sum_squares=100.0)
    higher = SampleMean(n=100, sum=200.0, sum_squares=400.0)

    same = test(constant, constant)
    better = test(higher, constant)

    assert (same.effect, same.ci, same.se) == (0.0, (0.0, 0.0), 0.0)
    assert (better.effect, better.ci) == (1.0, (1.0, 1.0))
    if test is frequentist_test:
        assert (same.p_value, better.p_value) == (1.0, 0.0)
    else:
        assert (same.chance_to_win, better.chance_to_win) == (0.5, 1.0)
        assert better.risk == (1.0, 0.0)


# Health checks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "weights", "expected"),
    [
        ({"control": 1000, "test": 1200}, {"control": 50, "test": 50}, (True, True)),
        ({"control": 40, "test": 20}, {"control": 0.5, "test": 0.5}, (False, False)),
        ({"control": 500}, {"control": 50, "test": 50}, (True, True)),
        ({}, {"control": 50, "test": 50}, (False, False)),
    ],
)
def test_srm_check(counts, weights, expected):
    check = srm_check(counts, weights)

    assert set(check) == {"p_value", "mismatch", "sufficient_data"}
    assert (check["mismatch"], check["sufficient_data"]) == expected


@pytest.mark.parametrize(
    ("variant", "metric_type", "is_baseline", "failures"),
    [
        ({"number_of_samples": 50, "sum": 1}, "mean", False, []),
        ({"number_of_samples": 49, "sum": 30}, "mean", False, [NOT_ENOUGH_EXPOSURES]),
        ({"number_of_samples": 100, "sum": 4}, "funnel", False, [NOT_ENOUGH_METRIC_DATA]),
        ({"number_of_samples": 100, "sum": 4, "denominator_sum": 90}, "retention", False, [NOT_ENOUGH_METRIC_DATA]),
        ({"number_of_samples": 100, "sum": 4}, "mean", False, []),
        ({"number_of_samples": 100, "sum": 5}, "funnel", False, []),
        ({"number_of_samples": 100, "sum": 9, "denominator_sum": 0}, "ratio", False, [NOT_ENOUGH_METRIC_DATA]),
        ({"number_of_samples": 100, "sum": 0}, "mean", True, [BASELINE_MEAN_IS_ZERO]),
        ({"number_of_samples": 100, "sum": 0}, "mean", False, []),
        (
            {"number_of_samples": 10, "sum": 0},
            "funnel",
            True,
            [NOT_ENOUGH_EXPOSURES, NOT_ENOUGH_METRIC_DATA, BASELINE_MEAN_IS_ZERO],
        ),
    ],
)
def test_validation_failures(variant, metric_type, is_baseline, failures):
    assert validation_failures(variant, metric_type=metric_type, is_baseline=is_baseline) == failures


# Result assembly -------------------------------------------------------------------------------------

MEAN_ROWS = [
    {"key": "control", "number_of_samples": 3407, "sum": 1396.87, "sum_squares": 52377.9767},
    {"key": "test", "number_of_samples": 3461, "sum": 2422.7, "sum_squares": 134698.29},
]
FUNNEL_ROWS = [
    {"key": "control", "number_of_samples": 100, "sum": 49, "sum_squares": 49, "step_counts": [100, 49]},
    {"key": "test", "number_of_samples": 100, "sum": 51, "sum_squares": 51, "step_counts": [100, 51]},
]


def test_frequentist_result_shape():
    result = compute_metric_result(MEAN_ROWS, metric_type="mean", stats_config={"method": "frequentist"})

    assert result == {
        "baseline": {**MEAN_ROWS[0], "validation_failures": []},
        "variant_results": [
            {
                **MEAN_ROWS[1],
                "validation_failures": [],
                "method": "frequentist",
                # The relative lift: the centre of the two-sided interval.
                "effect": pytest.approx((-0.03526 + 1.44989) / 2, abs=1e-5),
                "p_value": pytest.approx(0.06191, abs=1e-5),
                "confidence_interval": pytest.approx([-0.03526, 1.44989], abs=1e-5),
                "significant": False,
            }
        ],
    }


def test_bayesian_result_shape_is_the_default():
    result = compute_metric_result(FUNNEL_ROWS, metric_type="funnel", stats_config=None)

    assert result == {
        "baseline": {**FUNNEL_ROWS[0], "validation_failures": []},
        "variant_results": [
            {
                **FUNNEL_ROWS[1],
                "validation_failures": [],
                "method": "bayesian",
                "chance_to_win": pytest.approx(0.60918, abs=1e-5),
                "credible_interval": pytest.approx([-0.24779, 0.32943], abs=1e-5),
                "significant": False,
            }
        ],
    }


def test_result_honours_absolute_difference_and_alpha():
    config = {"method": "frequentist", "difference_type": "absolute", "frequentist": {"alpha": 0.01}}

    (variant,) = compute_metric_result(MEAN_ROWS, metric_type="mean", stats_config=config)["variant_results"]

    assert variant["p_value"] == pytest.approx(0.02016, abs=1e-5)
    assert variant["significant"] is False
    low, high = variant["confidence_interval"]
    assert low < 0.04538 and high > 0.53462  # wider than the 95% interval (0.04538, 0.53462)


def test_ratio_rows_keep_their_ratio_fields():
    ratio_fields = {"denominator_sum": 400, "denominator_sum_squares": 2000, "numerator_denominator_sum_product": 900}
    rows = [
        {"key": "control", "number_of_samples": 100, "sum": 200, "sum_squares": 800, **ratio_fields},
        {"key": "test", "number_of_samples": 100, "sum": 240, "sum_squares": 1000, **ratio_fields},
    ]

    result = compute_metric_result(rows, metric_type="ratio", stats_config={})

    assert result["baseline"] == {**rows[0], "validation_failures": []}
    assert result["variant_results"][0]["method"] == "bayesian"


def test_failing_variants_and_failing_baselines_get_no_inferential_fields():
    small = {"key": "small", "number_of_samples": 20, "sum": 10, "sum_squares": 10}
    rows = [*FUNNEL_ROWS, small]

    result = compute_metric_result(rows, metric_type="funnel", stats_config={})
    zero_baseline = [{**FUNNEL_ROWS[0], "sum": 0, "sum_squares": 0}, FUNNEL_ROWS[1]]
    failing_baseline = compute_metric_result(zero_baseline, metric_type="funnel", stats_config={})

    assert [variant["key"] for variant in result["variant_results"]] == ["test", "small"]
    assert result["variant_results"][1] == {
        **small,
        "validation_failures": [NOT_ENOUGH_EXPOSURES],
    }
    assert failing_baseline == {
        "baseline": {**zero_baseline[0], "validation_failures": [NOT_ENOUGH_METRIC_DATA, BASELINE_MEAN_IS_ZERO]},
        "variant_results": [{**FUNNEL_ROWS[1], "validation_failures": []}],
    }


def test_result_uses_another_baseline_key():
    rows = [{**MEAN_ROWS[0], "key": "a"}, {**MEAN_ROWS[1], "key": "b"}]

    result = compute_metric_result(rows, metric_type="mean", stats_config={"method": "frequentist"}, baseline_key="a")

    assert result["baseline"]["key"] == "a"
    assert result["variant_results"][0]["p_value"] == pytest.approx(0.06191, abs=1e-5)


def cuped_rows():
    arms = simulated_cuped_arms()
    rows = []
    for key, (metric, covariate) in arms.items():
        statistic = cuped_statistic(metric, covariate)
        rows.append(
            {
                "key": key,
                "number_of_samples": statistic.n,
                "sum": statistic.sum,
                "sum_squares": statistic.sum_squares,
                "covariate_sum": statistic.covariate_sum,
                "covariate_sum_squares": statistic.covariate_sum_squares,
                "sum_products": statistic.sum_products,
            }
        )
    return rows


@pytest.mark.parametrize(
    ("stats_config", "cuped"),
    [({"method": "frequentist", "cuped": {"enabled": True}}, None), ({"method": "frequentist"}, True)],
)
def test_cuped_in_results_narrows_the_interval_and_hides_covariates(stats_config, cuped):
    rows = cuped_rows()
    plain = compute_metric_result(rows, metric_type="mean", stats_config={"method": "frequentist"})

    adjusted = compute_metric_result(rows, metric_type="mean", stats_config=stats_config, cuped=cuped)

    (plain_variant,) = plain["variant_results"]
    (adjusted_variant,) = adjusted["variant_results"]
    plain_low, plain_high = plain_variant["confidence_interval"]
    adjusted_low, adjusted_high = adjusted_variant["confidence_interval"]
    assert adjusted_high - adjusted_low < plain_high - plain_low
    assert "covariate_sum" not in adjusted_variant
    assert "sum_products" not in adjusted["baseline"]


@pytest.mark.parametrize(
    ("stats_config", "expected"),
    [
        (None, StatsConfig("bayesian", True, 0.95, 0.05, False, 5000, False)),
        ({"method": ""}, StatsConfig("bayesian", True, 0.95, 0.05, False, 5000, False)),
        ({"bayesian": {"ci_level": None}}, StatsConfig("bayesian", True, 0.95, 0.05, False, 5000, False)),
        (
            {
                "method": "frequentist",
                "difference_type": "absolute",
                "bayesian": {"ci_level": 0.9},
                "frequentist": {"alpha": 0.1, "sequential": True, "sequential_tuning": 1000},
                "cuped": {"enabled": True},
            },
            StatsConfig("frequentist", False, 0.9, 0.1, True, 1000, True),
        ),
    ],
)
def test_stats_config_defaults(stats_config, expected):
    assert StatsConfig.from_dict(stats_config) == expected


@pytest.mark.parametrize(
    ("stats_config", "message"),
    [
        ({"method": "unknown"}, messages.INVALID_STATS_METHOD.format(method="unknown")),
        ({"cuped": {"enabled": True, "lookback_days": "7"}}, messages.STATS_CONFIG_LOOKBACK_INVALID),
        ([], messages.STATS_CONFIG_NOT_OBJECT),
    ],
)
def test_an_unknown_method_or_malformed_option_is_refused_not_defaulted(stats_config, message):
    with pytest.raises(StatsConfigError) as raised:
        StatsConfig.from_dict(stats_config)

    assert raised.value.message == message


@pytest.mark.parametrize(("lookback_days", "expected"), [(None, 14), (0, 1), (7, 7), (90, 30)])
def test_cuped_lookback_days_default_and_clamp(lookback_days, expected):
    config = StatsConfig.from_dict({"cuped": {"enabled": True, "lookback_days": lookback_days}})

    assert (config.cuped, config.cuped_lookback_days) == (True, expected)


def test_every_registered_method_computes_a_result():
    for method in STATS_METHODS:
        (variant,) = compute_metric_result(MEAN_ROWS, metric_type="mean", stats_config={"method": method})[
            "variant_results"
        ]
        assert variant["method"] == method


def test_multiple_testing_correction_rewrites_frequentist_results_only():
    frequentist = {"method": "frequentist", "p_value": 0.02, "confidence_interval": [0.1, 0.2], "significant": True}
    bayesian = {"method": "bayesian", "chance_to_win": 0.99, "credible_interval": [0.1, 0.2], "significant": True}
    results = [
        {"baseline": {"key": "control"}, "variant_results": [{"key": "a", **frequentist}, {"key": "b", **bayesian}]},
        {"baseline": {"key": "control"}, "variant_results": [{"key": "a", **frequentist, "p_value": 0.01}]},
        {"baseline": {"key": "control"}, "variant_results": [{"key": "a", "validation_failures": ["x"]}]},
    ]

    corrected = apply_multiple_testing_correction(results, "holm")

    assert corrected[0]["variant_results"] == [
        {"key": "a", **frequentist, "p_value": pytest.approx(0.02), "significant": True},
        {"key": "b", **bayesian},
    ]
    assert corrected[1]["variant_results"] == [{"key": "a", **frequentist, "p_value": pytest.approx(0.02)}]
    assert corrected[2] == results[2]
    assert results[1]["variant_results"][0]["p_value"] == 0.01


def test_multiple_testing_correction_can_remove_significance():
    variant = {"key": "a", "method": "frequentist", "p_value": 0.03, "confidence_interval": [0, 1], "significant": True}
    results = [{"baseline": {}, "variant_results": [variant, {**variant, "key": "b", "p_value": 0.04}]}]

    (corrected,) = apply_multiple_testing_correction(results, "bh")

    assert [v["p_value"] for v in corrected["variant_results"]] == pytest.approx([0.04, 0.04])
    assert [v["significant"] for v in corrected["variant_results"]] == [True, True]
    (bonferroni_like,) = apply_multiple_testing_correction(results, "holm", alpha=0.05)
    assert [v["significant"] for v in bonferroni_like["variant_results"]] == [False, False]


ADJUSTED_ARM, _, _ = cuped_adjust(CupedStatistic(10, 5, 9, 4, 8, 6), CupedStatistic(10, 5, 9, 4, 8, 6))


# Invalid inputs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: SampleMean(n=1, sum=1, sum_squares=1), "at least 2 units"),
        (lambda: Proportion(n=10, successes=11), "successes must lie in"),
        (lambda: Ratio(100, 10, 20, 0, 0, 0), "denominator_sum is 0"),
        (lambda: frequentist_test(TREATMENT_MEAN, CONTROL_MEAN, alpha=0), "alpha must be between 0 and 1"),
        (lambda: frequentist_test(TREATMENT_MEAN, CONTROL_MEAN, alpha=1.5), "alpha must be between 0 and 1"),
        (lambda: frequentist_test(TREATMENT_MEAN, CONTROL_MEAN, sequential_tuning=0), "sequential_tuning"),
        (
            lambda: frequentist_test(TREATMENT_MEAN, SampleMean(n=100, sum=0, sum_squares=5)),
            "control mean is 0",
        ),
        (lambda: bayesian_test(TREATMENT_MEAN, CONTROL_MEAN, ci_level=1), "ci_level must be between 0 and 1"),
        (lambda: bayesian_test(TREATMENT_MEAN, CONTROL_MEAN, prior_mean=0.0), "both prior_mean and prior_variance"),
        (
            lambda: bayesian_test(TREATMENT_MEAN, CONTROL_MEAN, prior_mean=0.0, prior_variance=0),
            "prior_variance must be positive",
        ),
        (
            lambda: frequentist_test(ADJUSTED_ARM, CONTROL_MEAN),
            "both be CUPED-adjusted",
        ),
        (lambda: adjust_p_values([0.1], "bonferroni"), "Unknown multiple-testing method 'bonferroni'; use one of"),
        (lambda: adjust_p_values([0.1, 1.2], "holm"), r"p-values must lie in \[0, 1\]"),
        (lambda: srm_p_value([10, 20], [0.5]), "one weight per count"),
        (lambda: srm_p_value([10], [1.0]), "at least two variants"),
        (lambda: srm_p_value([10, 20], [1.0, 0.0]), "Every weight must be positive"),
        (lambda: compute_metric_result(MEAN_ROWS, metric_type="trend", stats_config={}), "Unknown metric_type"),
        (
            lambda: compute_metric_result(MEAN_ROWS, metric_type="mean", stats_config={}, baseline_key="x"),
            "exactly one variant keyed 'x'",
        ),
        (
            lambda: compute_metric_result(MEAN_ROWS, metric_type="ratio", stats_config={}),
            "Variant 'control' is missing denominator_sum",
        ),
    ],
)
def test_invalid_inputs_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
