"""POST /api/projects/:project_id/experiments/calculate_running_time/: sample size per variant against the
textbook formulas, the baseline from raw statistics, every invalid input, and its scope."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from experiments import messages
from tests.factories import ProjectFactory, member_of
from tests.helpers import NOT_A_MEMBER, missing_scope, validation_error


def calculator_url(project) -> str:
    return f"/api/projects/{project.pk}/experiments/calculate_running_time/"


def z_sum_squared(alpha: float = 0.05, power: float = 0.8) -> float:
    return (norm.ppf(1 - alpha / 2) + norm.ppf(power)) ** 2


def two_proportion_size(rate: float, relative_effect: float, alpha: float = 0.05, power: float = 0.8) -> float:
    treated = rate * (1 + relative_effect)
    spread = rate * (1 - rate) + treated * (1 - treated)
    return z_sum_squared(alpha, power) * spread / (treated - rate) ** 2


def two_means_size(mean: float, variance: float, relative_effect: float, alpha=0.05, power=0.8) -> float:
    return z_sum_squared(alpha, power) * 2 * variance / (relative_effect * mean) ** 2


FUNNEL = {"metric_type": "funnel", "baseline_value": 0.1, "minimum_detectable_effect": 0.1}
MEAN = {"metric_type": "mean", "baseline_value": 10, "variance": 4, "minimum_detectable_effect": 0.1}
RAW_MEAN = {"metric_type": "mean", "n": 100, "sum": 1000, "sum_squares": 10400, "minimum_detectable_effect": 0.1}


def calculate(client, project, body: dict):
    return client.post(calculator_url(project), body, format="json")


def test_the_textbook_conversion_example(api_client, project):
    """Baseline 10%, +10% relative, alpha 0.05, power 0.8: about 14,750 users per variant."""
    expected = two_proportion_size(0.10, 0.10)

    response = calculate(api_client, project, FUNNEL)

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "baseline_value": 0.1,
        "variance": pytest.approx(0.09),
        "recommended_sample_size": math.ceil(expected),
        "recommended_running_time_days": None,
    }
    assert abs(response.json()["recommended_sample_size"] - 14_750) <= 5


@pytest.mark.parametrize(
    ("body", "rate", "effect", "alpha", "power", "variants", "per_day"),
    [
        ({"baseline_value": 0.1, "exposure_rate_per_day": 1000}, 0.1, 0.1, 0.05, 0.8, 2, 1000),
        (
            {"baseline_value": 0.25, "minimum_detectable_effect": 0.05, "alpha": 0.01, "power": 0.9},
            0.25,
            0.05,
            0.01,
            0.9,
            2,
            None,
        ),
        ({"baseline_value": 0.4, "variants": 3, "exposure_rate_per_day": 333.3}, 0.4, 0.1, 0.05, 0.8, 3, 333.3),
        # Raw statistics of a funnel: 100 conversions of 1,000 users.
        ({"n": 1000, "sum": 100, "sum_squares": 100}, 0.1, 0.1, 0.05, 0.8, 2, None),
    ],
)
def test_funnel_sample_size_and_running_time(api_client, project, body, rate, effect, alpha, power, variants, per_day):
    expected = math.ceil(two_proportion_size(rate, effect, alpha, power))

    response = calculate(api_client, project, {"metric_type": "funnel", "minimum_detectable_effect": 0.1, **body})

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "baseline_value": pytest.approx(rate),
        "variance": pytest.approx(rate * (1 - rate)),
        "recommended_sample_size": expected,
        "recommended_running_time_days": None if per_day is None else math.ceil(expected * variants / per_day),
    }


def test_mean_metric_from_raw_statistics(api_client, project):
    values = np.array([3.0, 7.0, 8.0, 12.0, 15.0, 9.0, 11.0, 6.0, 10.0, 9.0, 4.5, 13.5])
    mean, variance = values.mean(), values.var(ddof=1)
    expected = math.ceil(two_means_size(mean, variance, 0.05))

    response = calculate(
        api_client,
        project,
        {
            "metric_type": "mean",
            "minimum_detectable_effect": 0.05,
            "n": len(values),
            "sum": float(values.sum()),
            "sum_squares": float((values**2).sum()),
            "exposure_rate_per_day": 250,
        },
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "baseline_value": pytest.approx(mean),
        "variance": pytest.approx(variance),
        "recommended_sample_size": expected,
        "recommended_running_time_days": math.ceil(expected * 2 / 250),
    }


@pytest.mark.parametrize("metric_type", ["mean", "ratio"])
def test_mean_and_ratio_metrics_from_a_baseline_and_variance(api_client, project, metric_type):
    expected = math.ceil(two_means_size(-40.0, 900.0, 0.1, alpha=0.1, power=0.95))

    response = calculate(
        api_client,
        project,
        {
            "metric_type": metric_type,
            "minimum_detectable_effect": 0.1,
            "baseline_value": -40,
            "variance": 900,
            "alpha": 0.1,
            "power": 0.95,
        },
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "baseline_value": -40.0,
        "variance": 900.0,
        "recommended_sample_size": expected,
        "recommended_running_time_days": None,
    }


def test_the_calculator_needs_only_experiment_read(project, user, make_client):
    response = calculate(
        make_client(user, scopes=["experiment:read"]),
        project,
        FUNNEL,
    )

    assert response.status_code == 200, response.json()


def test_the_calculator_refuses_a_key_without_experiment_scopes(project, user, make_client):
    response = calculate(
        make_client(user, scopes=["feature_flag:write"]),
        project,
        FUNNEL,
    )

    assert response.status_code == 403
    assert response.json() == missing_scope("experiment:read")


def test_the_calculator_is_project_scoped(api_client):
    outsiders_project = ProjectFactory()
    member_of(outsiders_project)

    response = calculate(api_client, outsiders_project, FUNNEL)

    assert response.status_code == 403
    assert response.json() == NOT_A_MEMBER


def without(body: dict, *keys: str) -> dict:
    return {key: value for key, value in body.items() if key not in keys}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # The effect, alpha and power.
        (
            {**FUNNEL, "minimum_detectable_effect": 0},
            validation_error(messages.MDE_NOT_POSITIVE, "minimum_detectable_effect"),
        ),
        (
            {**MEAN, "minimum_detectable_effect": -0.1},
            validation_error(messages.MDE_NOT_POSITIVE, "minimum_detectable_effect"),
        ),
        (
            without(FUNNEL, "minimum_detectable_effect"),
            validation_error("This field is required.", "minimum_detectable_effect", code="required"),
        ),
        ({**FUNNEL, "alpha": 0}, validation_error(messages.NOT_A_PROBABILITY.format(name="alpha"), "alpha")),
        ({**FUNNEL, "alpha": 1}, validation_error(messages.NOT_A_PROBABILITY.format(name="alpha"), "alpha")),
        ({**MEAN, "alpha": -0.05}, validation_error(messages.NOT_A_PROBABILITY.format(name="alpha"), "alpha")),
        ({**FUNNEL, "power": 0}, validation_error(messages.NOT_A_PROBABILITY.format(name="power"), "power")),
        ({**MEAN, "power": 1}, validation_error(messages.NOT_A_PROBABILITY.format(name="power"), "power")),
        ({**MEAN, "power": 80}, validation_error(messages.NOT_A_PROBABILITY.format(name="power"), "power")),
        # Conversion rates of funnels.
        ({**FUNNEL, "baseline_value": 0}, validation_error(messages.CONVERSION_RATE_OUT_OF_RANGE, "baseline_value")),
        ({**FUNNEL, "baseline_value": 1}, validation_error(messages.CONVERSION_RATE_OUT_OF_RANGE, "baseline_value")),
        ({**FUNNEL, "baseline_value": 12}, validation_error(messages.CONVERSION_RATE_OUT_OF_RANGE, "baseline_value")),
        ({**FUNNEL, "baseline_value": -0.1}, validation_error(messages.CONVERSION_RATE_OUT_OF_RANGE, "baseline_value")),
        (
            {"metric_type": "funnel", "n": 100, "sum": 150, "sum_squares": 150, "minimum_detectable_effect": 0.1},
            validation_error(messages.CONVERSION_RATE_OUT_OF_RANGE, "sum"),
        ),
        (
            {**FUNNEL, "baseline_value": 0.6, "minimum_detectable_effect": 1},
            validation_error(messages.MDE_TOO_LARGE_FOR_RATE, "minimum_detectable_effect"),
        ),
        # The baseline: missing, partial raw statistics, a mean without spread or of zero.
        (
            without(FUNNEL, "baseline_value"),
            validation_error(messages.BASELINE_REQUIRED, "baseline_value", code="required"),
        ),
        (
            without(RAW_MEAN, "sum_squares"),
            validation_error(messages.RAW_BASELINE_INCOMPLETE, "sum_squares", code="required"),
        ),
        (
            {**without(RAW_MEAN, "sum", "sum_squares"), "baseline_value": 10, "variance": 4},
            validation_error(messages.RAW_BASELINE_INCOMPLETE, "sum", code="required"),
        ),
        (without(MEAN, "variance"), validation_error(messages.VARIANCE_REQUIRED, "variance", code="required")),
        ({**MEAN, "variance": 0}, validation_error(messages.VARIANCE_NOT_POSITIVE, "variance")),
        ({**MEAN, "variance": -4}, validation_error(messages.VARIANCE_NOT_POSITIVE, "variance")),
        ({**RAW_MEAN, "sum_squares": 10000}, validation_error(messages.VARIANCE_NOT_POSITIVE, "sum_squares")),
        ({**MEAN, "baseline_value": 0}, validation_error(messages.BASELINE_MEAN_ZERO, "baseline_value")),
        ({**RAW_MEAN, "sum": 0}, validation_error(messages.BASELINE_MEAN_ZERO, "sum")),
        (
            {**RAW_MEAN, "n": 1},
            validation_error("Ensure this value is greater than or equal to 2.", "n", code="min_value"),
        ),
        (
            {**RAW_MEAN, "sum_squares": -1},
            validation_error("Ensure this value is greater than or equal to 0.", "sum_squares", code="min_value"),
        ),
        # Exposure and variants.
        (
            {**FUNNEL, "exposure_rate_per_day": -100},
            validation_error(messages.EXPOSURE_RATE_NOT_POSITIVE, "exposure_rate_per_day"),
        ),
        (
            {**FUNNEL, "exposure_rate_per_day": 0},
            validation_error(messages.EXPOSURE_RATE_NOT_POSITIVE, "exposure_rate_per_day"),
        ),
        (
            {**FUNNEL, "variants": 1},
            validation_error("Ensure this value is greater than or equal to 2.", "variants", code="min_value"),
        ),
        (
            {**FUNNEL, "variants": 21},
            validation_error("Ensure this value is less than or equal to 20.", "variants", code="max_value"),
        ),
        # Wrong types.
        (
            {**FUNNEL, "metric_type": "count"},
            validation_error('"count" is not a valid choice.', "metric_type", code="invalid_choice"),
        ),
        (without(FUNNEL, "metric_type"), validation_error("This field is required.", "metric_type", code="required")),
        (
            {**FUNNEL, "minimum_detectable_effect": "ten percent"},
            validation_error("A valid number is required.", "minimum_detectable_effect"),
        ),
        ({**FUNNEL, "baseline_value": [0.1]}, validation_error("A valid number is required.", "baseline_value")),
        ({**MEAN, "variance": {"value": 4}}, validation_error("A valid number is required.", "variance")),
        ({**RAW_MEAN, "n": 100.5}, validation_error("A valid integer is required.", "n")),
        ({**RAW_MEAN, "n": "many"}, validation_error("A valid integer is required.", "n")),
        ({**FUNNEL, "variants": "two"}, validation_error("A valid integer is required.", "variants")),
        ({**FUNNEL, "alpha": None}, validation_error("This field may not be null.", "alpha", code="null")),
        (
            {**FUNNEL, "exposure_rate_per_day": "fast"},
            validation_error("A valid number is required.", "exposure_rate_per_day"),
        ),
        # Strings Python's float() reads as NaN or infinity are not numbers either.
        (
            {**FUNNEL, "minimum_detectable_effect": "NaN"},
            validation_error("A valid number is required.", "minimum_detectable_effect"),
        ),
        (
            {**FUNNEL, "minimum_detectable_effect": "Infinity"},
            validation_error("A valid number is required.", "minimum_detectable_effect"),
        ),
        ({**MEAN, "variance": "inf"}, validation_error("A valid number is required.", "variance")),
        ({**MEAN, "baseline_value": "-inf"}, validation_error("A valid number is required.", "baseline_value")),
        ({**FUNNEL, "alpha": "nan"}, validation_error("A valid number is required.", "alpha")),
        (
            {**FUNNEL, "exposure_rate_per_day": "Infinity"},
            validation_error("A valid number is required.", "exposure_rate_per_day"),
        ),
    ],
)
def test_invalid_input_answers_400_naming_the_field(api_client, project, body, expected):
    response = calculate(api_client, project, body)

    assert response.status_code == 400
    assert response.json() == expected


@pytest.mark.parametrize(
    "body",
    [
        {**FUNNEL, "minimum_detectable_effect": 1e-20},
        {**MEAN, "baseline_value": 1e-300, "variance": 1e300},
        {**MEAN, "baseline_value": 1e-200, "minimum_detectable_effect": 1e-200},
        {**MEAN, "minimum_detectable_effect": 1e300},
    ],
)
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_finite_inputs_whose_sample_size_overflows_answer_400(api_client, project, body):
    response = calculate(api_client, project, body)

    assert response.status_code == 400
    assert response.json() == validation_error(messages.SAMPLE_SIZE_OUT_OF_RANGE, "minimum_detectable_effect")


def test_an_exposure_rate_too_small_to_count_days_is_a_400(api_client, project):
    response = api_client.post(
        f"/api/projects/{project.id}/experiments/calculate_running_time/",
        {
            "metric_type": "funnel",
            "minimum_detectable_effect": 0.1,
            "baseline_value": 0.1,
            "exposure_rate_per_day": 1e-320,
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == validation_error(messages.RUNNING_TIME_OUT_OF_RANGE, "exposure_rate_per_day")


def test_a_body_that_is_not_an_object(api_client, project):
    response = api_client.post(calculator_url(project), [FUNNEL], format="json")

    assert response.status_code == 400
    assert response.json() == validation_error("Invalid data. Expected a dictionary, but got list.", None)
