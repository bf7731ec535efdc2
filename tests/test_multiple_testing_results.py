"""`stats_config.multiple_testing_correction` corrects the p-values of a metric's test variants in its results."""

import datetime as dt

import pytest

from experiments.results.current import metric_results_as_of
from experiments.stats import SampleMean, adjust_p_values, frequentist_test
from tests.metric_reference import RawEvent
from tests.test_metric_aggregation import FLAG_KEY, START, events_node, make_experiment, mean, store

pytestmark = pytest.mark.django_db

VARIANTS = ("control", "a", "b")
METRIC = {**mean(events_node("purchase", math="sum", math_property="amount")), "uuid": "m"}


def three_arm_experiment(correction):
    experiment = make_experiment(
        end=START + dt.timedelta(days=2),
        stats_config={"method": "frequentist", "multiple_testing_correction": correction},
    )
    flag = experiment.feature_flag
    flag.filters = {
        **flag.filters,
        "multivariate": {
            "variants": [
                {"key": key, "rollout_percentage": share} for key, share in zip(VARIANTS, (34, 33, 33), strict=True)
            ]
        },
    }
    flag.save()
    events = []
    for number in range(180):
        unit, variant = f"unit-{number}", VARIANTS[number % 3]
        exposed_at = START + dt.timedelta(minutes=number)
        events.append(
            RawEvent(
                "$feature_flag_called", unit, exposed_at, {"$feature_flag": FLAG_KEY, "$feature_flag_response": variant}
            )
        )
        lift = VARIANTS.index(variant)
        events.append(RawEvent("purchase", unit, exposed_at + dt.timedelta(hours=1), {"amount": number % 5 + lift}))
    store(experiment.project, events)
    return experiment


def p_values(result) -> dict[str, float]:
    return {variant["key"]: variant["p_value"] for variant in result["variant_results"]}


def test_holm_correction_is_applied_across_the_test_variants():
    boundary = [START + dt.timedelta(days=2)]
    uncorrected = metric_results_as_of(experiment=three_arm_experiment(None), metric=METRIC, boundaries=boundary)[0]
    corrected = metric_results_as_of(experiment=three_arm_experiment("holm"), metric=METRIC, boundaries=boundary)[0]

    raw = p_values(uncorrected)
    expected = dict(zip(raw, adjust_p_values(list(raw.values()), "holm"), strict=True))
    assert p_values(corrected) == pytest.approx(expected)
    assert expected != pytest.approx(raw)
    # The raw p-values are the plain Welch test of each arm against control.
    baseline = corrected["baseline"]
    control = SampleMean(baseline["number_of_samples"], baseline["sum"], baseline["sum_squares"])
    for variant in corrected["variant_results"]:
        treatment = SampleMean(variant["number_of_samples"], variant["sum"], variant["sum_squares"])
        assert raw[variant["key"]] == pytest.approx(frequentist_test(treatment, control).p_value)
        assert variant["significant"] == (variant["p_value"] < 0.05)
