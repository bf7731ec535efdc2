"""GET /api/projects/:project_id/experiments/:id/power/: mid-experiment power of a metric, per test variant, from
real events (spec/analysis.md §8)."""

import datetime as dt

import pytest

from experiments import messages
from experiments.stats import SampleMean, estimate_effect
from experiments.stats.power import mid_experiment_power
from experiments_api.exceptions import error_body
from tests.factories import ExperimentFactory, member_of
from tests.metric_reference import RawEvent
from tests.test_metric_aggregation import FLAG_KEY, events_node, make_experiment, mean, store

pytestmark = pytest.mark.django_db

START = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
END = dt.datetime(2025, 3, 3, 20, 0, tzinfo=dt.UTC)
UNITS_PER_DAY = {"control": (40, 30, 50), "test": (45, 35, 40)}
PURCHASES = {**mean(events_node("purchase")), "uuid": "purchases"}


def purchases_of(variant: str, number: int) -> int:
    return number % (3 if variant == "control" else 4)


@pytest.fixture
def experiment():
    experiment = make_experiment(timezone="UTC", start=START, end=END, metrics=[PURCHASES])
    events = []
    for variant, per_day in UNITS_PER_DAY.items():
        for day, count in enumerate(per_day):
            for number in range(count):
                unit, at = f"{variant}-{day}-{number}", START + dt.timedelta(days=day, minutes=number)
                flag = {"$feature_flag": FLAG_KEY, "$feature_flag_response": variant}
                events.append(RawEvent("$feature_flag_called", unit, at, flag))
                events.extend(
                    RawEvent("purchase", unit, at + dt.timedelta(minutes=5 + purchase))
                    for purchase in range(purchases_of(variant, number))
                )
    store(experiment.project, events)
    return experiment


def power_url(experiment) -> str:
    return f"/api/projects/{experiment.project_id}/experiments/{experiment.pk}/power/"


def sample_mean(variant: str) -> SampleMean:
    values = [purchases_of(variant, number) for count in UNITS_PER_DAY[variant] for number in range(count)]
    return SampleMean(len(values), float(sum(values)), float(sum(value * value for value in values)))


def test_power_per_variant_from_the_metric_and_the_recent_exposure_rate(experiment, make_client):
    client = make_client(member_of(experiment.project))

    response = client.get(power_url(experiment), {"metric_uuid": "purchases", "target_mde": 0.2})

    assert response.status_code == 200, response.json()
    treatment, control = sample_mean("test"), sample_mean("control")
    effect = estimate_effect(treatment, control, relative=True)
    daily = (sum(UNITS_PER_DAY["test"]) + sum(UNITS_PER_DAY["control"])) / 3
    expected = mid_experiment_power(
        effect_variance=effect.variance, units_so_far=treatment.n + control.n, daily_units=daily, target_mde=0.2
    )
    assert response.json() == {
        "metric_uuid": "purchases",
        "target_mde": 0.2,
        "baseline": "control",
        "variants": [
            {
                "key": "test",
                "status": "underpowered",
                "power": pytest.approx(expected.power, abs=1e-12),
                "target_power": 0.8,
                "additional_units": expected.additional_units,
                "days_needed": expected.days_needed,
                "upper_bound_achieved": True,
            }
        ],
    }
    assert expected.additional_units > 0


def test_too_few_exposures_is_not_enough_data(make_client):
    experiment = make_experiment(timezone="UTC", start=START, end=END, metrics=[PURCHASES])
    client = make_client(member_of(experiment.project))

    response = client.get(power_url(experiment), {"metric_uuid": "purchases"})

    assert response.status_code == 200
    assert response.json()["variants"] == [{"key": "test", "status": "not-enough-data"}]


@pytest.mark.parametrize(
    ("params", "body"),
    [
        (
            {},
            error_body(type="validation_error", code="required", detail="This field is required.", attr="metric_uuid"),
        ),
        (
            {"metric_uuid": "purchases", "target_mde": "0"},
            error_body(
                type="validation_error",
                code="invalid_input",
                detail=messages.TARGET_MDE_NOT_POSITIVE,
                attr="target_mde",
            ),
        ),
        (
            {"metric_uuid": "purchases", "target_mde": "nan"},
            error_body(
                type="validation_error", code="invalid_input", detail="A valid number is required.", attr="target_mde"
            ),
        ),
    ],
)
def test_bad_parameters_are_a_400(experiment, make_client, params, body):
    client = make_client(member_of(experiment.project))

    response = client.get(power_url(experiment), params)

    assert (response.status_code, response.json()) == (400, body)


def test_an_unknown_metric_is_a_404(experiment, make_client):
    client = make_client(member_of(experiment.project))

    response = client.get(power_url(experiment), {"metric_uuid": "nope"})

    assert (response.status_code, response.json()) == (
        404,
        error_body(type="invalid_request", code="not_found", detail=messages.METRIC_NOT_FOUND.format(uuid="nope")),
    )


def test_a_draft_has_no_power_yet(make_client):
    draft = ExperimentFactory(metrics=[PURCHASES])
    client = make_client(member_of(draft.project))

    response = client.get(power_url(draft), {"metric_uuid": "purchases"})

    assert (response.status_code, response.json()) == (
        400,
        error_body(type="validation_error", code="invalid_input", detail=messages.EXPERIMENT_NOT_STARTED),
    )


def test_power_needs_the_experiment_read_scope(experiment, make_client):
    client = make_client(member_of(experiment.project), scopes=["feature_flag:read"])

    response = client.get(power_url(experiment), {"metric_uuid": "purchases"})

    assert response.status_code == 403
