"""POST /api/projects/:project_id/query/ with the experiment query kinds: current results, exposures, bad input."""

import datetime as dt
import math

import pytest
from django.utils import timezone
from scipy import stats

from experiments import messages
from experiments.definitions.fingerprint import experiment_metric_fingerprint
from experiments.models import ExperimentMetricResult
from experiments.results.backfill import timeseries_recalculation_run
from experiments.results.current import current_metric_result
from experiments.results.daily import daily_results_compute
from experiments.results.requests import timeseries_recalculation_request
from experiments_api.exceptions import error_body
from tests.factories import ExperimentFactory, FeatureFlagFactory, ProjectFactory
from tests.helpers import NOT_FOUND, missing_scope, validation_error
from tests.metric_reference import RawEvent
from tests.test_metric_aggregation import events_node, mean, store

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_store")]

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
METRIC = mean(events_node("purchase"))


def launched_experiment(project, *, start=START, end=START + dt.timedelta(days=2, hours=12)):
    flag = FeatureFlagFactory(project=project, key="checkout-flow")
    return ExperimentFactory(project=project, feature_flag=flag, start_date=start, end_date=end)


def exposed(project, *, control: int, test: int, multiple: int = 0) -> None:
    """Units exposed on the first two days; every test unit buys once, every second control unit buys."""
    events = []
    for number in range(control + test):
        variant = "control" if number < control else "test"
        unit, at = f"unit-{number}", START + dt.timedelta(hours=number % 40)
        events.append(
            RawEvent(
                "$feature_flag_called", unit, at, {"$feature_flag": "checkout-flow", "$feature_flag_response": variant}
            )
        )
        if variant == "test" or number % 2:
            events.append(RawEvent("purchase", unit, at + dt.timedelta(minutes=5)))
    for number in range(multiple):
        for variant in ("control", "test"):
            flag = {"$feature_flag": "checkout-flow", "$feature_flag_response": variant}
            events.append(RawEvent("$feature_flag_called", f"both-{number}", START + dt.timedelta(hours=30), flag))
    store(project, events)


def post(client, project, query: dict):
    return client.post(f"/api/projects/{project.pk}/query/", {"query": query}, format="json")


def test_an_experiment_query_returns_the_current_result(api_client, project):
    experiment = launched_experiment(project)
    exposed(project, control=60, test=60)

    response = post(api_client, project, {"kind": "ExperimentQuery", "experiment_id": experiment.pk, "metric": METRIC})

    assert response.status_code == 200
    body = response.json()
    assert body == {
        "kind": "ExperimentQuery",
        "metric": METRIC,
        **current_metric_result(experiment=experiment, metric=METRIC),
    }
    assert (body["baseline"]["number_of_samples"], body["baseline"]["sum"]) == (60, 30)
    (test,) = body["variant_results"]
    assert (test["key"], test["number_of_samples"], test["sum"], test["method"]) == ("test", 60, 60, "bayesian")
    assert test["chance_to_win"] > 0.99 and test["significant"] is True
    assert body["sample_ratio_mismatch"]["mismatch"] is False


def test_a_running_experiment_is_computed_up_to_now(api_client, project):
    experiment = launched_experiment(project, start=timezone.now() - dt.timedelta(hours=2), end=None)
    store(
        project,
        [
            RawEvent(
                "$feature_flag_called",
                "unit",
                timezone.now() - dt.timedelta(hours=1),
                {"$feature_flag": "checkout-flow", "$feature_flag_response": "control"},
            )
        ],
    )
    response = post(api_client, project, {"kind": "ExperimentQuery", "experiment_id": experiment.pk, "metric": METRIC})
    assert response.status_code == 200
    assert response.json()["baseline"]["number_of_samples"] == 1


def test_an_exposure_query_returns_cumulative_exposures_per_day_and_the_srm_check(api_client, project):
    experiment = launched_experiment(project)
    exposed(project, control=70, test=50, multiple=2)

    response = post(api_client, project, {"kind": "ExperimentExposureQuery", "experiment_id": experiment.pk})

    assert response.status_code == 200
    days = ["2025-01-01", "2025-01-02", "2025-01-03"]
    body = response.json()
    p_value = body["sample_ratio_mismatch"].pop("p_value")
    assert body == {
        "kind": "ExperimentExposureQuery",
        "timeseries": [
            {"variant": "control", "days": days, "exposure_counts": [48, 70, 70]},
            {"variant": "test", "days": days, "exposure_counts": [24, 50, 50]},
            {"variant": "$multiple", "days": days, "exposure_counts": [0, 2, 2]},
        ],
        "total_exposures": {"control": 70, "test": 50, "$multiple": 2},
        "date_range": {"date_from": "2025-01-01T00:00:00+00:00", "date_to": "2025-01-03T12:00:00+00:00"},
        "sample_ratio_mismatch": {"expected": {"control": 60.0, "test": 60.0}},
    }
    assert p_value == pytest.approx(0.0679, abs=1e-4)


def test_the_exposure_query_has_no_srm_check_below_100_exposures(api_client, project):
    experiment = launched_experiment(project)
    exposed(project, control=40, test=10)
    response = post(api_client, project, {"kind": "ExperimentExposureQuery", "experiment_id": experiment.pk})
    assert response.json()["sample_ratio_mismatch"] is None


BAD_QUERIES = {
    "no query": (None, validation_error("This field is required.", "query", "required")),
    "unknown kind": (
        {"kind": "TrendsQuery", "experiment_id": 1},
        validation_error('"TrendsQuery" is not a valid choice.', "query__kind", "invalid_choice"),
    ),
    "no experiment id": (
        {"kind": "ExperimentExposureQuery"},
        validation_error("This field is required.", "query__experiment_id", "required"),
    ),
    "experiment id not a number": (
        {"kind": "ExperimentExposureQuery", "experiment_id": "first"},
        validation_error("A valid integer is required.", "query__experiment_id"),
    ),
    "no metric": (
        {"kind": "ExperimentQuery", "experiment_id": 1},
        validation_error(messages.QUERY_METRIC_REQUIRED, "query__metric"),
    ),
    "metric not an object": (
        {"kind": "ExperimentQuery", "experiment_id": 1, "metric": "purchase"},
        validation_error(messages.QUERY_METRIC_REQUIRED, "query__metric"),
    ),
}


@pytest.mark.parametrize("query,error", BAD_QUERIES.values(), ids=BAD_QUERIES.keys())
def test_an_invalid_query_is_a_400(api_client, project, query, error):
    body = {} if query is None else {"query": query}
    response = api_client.post(f"/api/projects/{project.pk}/query/", body, format="json")
    assert (response.status_code, response.json()) == (400, error)


def test_an_experiment_of_another_project_is_not_found(api_client, project):
    other = launched_experiment(ProjectFactory())
    response = post(api_client, project, {"kind": "ExperimentExposureQuery", "experiment_id": other.pk})
    assert (response.status_code, response.json()) == (
        404,
        NOT_FOUND,
    )


@pytest.mark.parametrize("kind", ["ExperimentQuery", "ExperimentExposureQuery"])
def test_a_draft_experiment_has_no_results(api_client, project, kind):
    draft = launched_experiment(project, start=None, end=None)
    response = post(api_client, project, {"kind": kind, "experiment_id": draft.pk, "metric": METRIC})
    assert (response.status_code, response.json()) == (
        400,
        error_body(type="validation_error", code="invalid_input", detail=messages.EXPERIMENT_NOT_STARTED),
    )


def test_a_metric_the_engine_cannot_compute_is_a_400_naming_the_option(api_client, project):
    experiment = launched_experiment(project)
    metric = mean({"kind": "ActionsNode", "id": 4})
    response = post(api_client, project, {"kind": "ExperimentQuery", "experiment_id": experiment.pk, "metric": metric})
    assert (response.status_code, response.json()) == (
        400,
        error_body(
            type="validation_error",
            code="unsupported_metric",
            detail=messages.UNSUPPORTED_METRIC.format(option="ActionsNode sources"),
            attr="metric",
        ),
    )


@pytest.mark.parametrize(
    "metric,problem",
    [
        ({**METRIC, "metric_type": []}, messages.WRONG_METRIC_TYPE),
        ({**METRIC, "breakdownFilter": ["plan"]}, messages.BREAKDOWN_FILTER_INVALID),
        ({**METRIC, "prior": {"stddev": -1}}, messages.PRIOR_STDDEV_INVALID.format(path="prior")),
        ({**METRIC, "prior": "N(0, 0.3)"}, messages.PRIOR_NOT_OBJECT.format(path="prior")),
    ],
    ids=["metric_type a list", "breakdownFilter a list", "prior stddev negative", "prior a string"],
)
def test_a_malformed_metric_is_a_400_not_a_crash(api_client, project, metric, problem):
    experiment = launched_experiment(project)
    response = post(api_client, project, {"kind": "ExperimentQuery", "experiment_id": experiment.pk, "metric": metric})
    assert (response.status_code, response.json()) == (
        400,
        error_body(
            type="validation_error",
            code="invalid_metric",
            detail=messages.INVALID_METRIC.format(problem=problem),
            attr="metric",
        ),
    )


def _posterior_reference(baseline: dict, variant: dict, prior_mean: float, prior_stddev: float) -> tuple:
    """chance_to_win and the 95% credible interval of the relative lift from the served sums, by the closed-form
    normal-normal posterior (scipy), without the engine."""
    n_c, n_t = baseline["number_of_samples"], variant["number_of_samples"]
    m_c, m_t = baseline["sum"] / n_c, variant["sum"] / n_t
    v_c = (baseline["sum_squares"] - baseline["sum"] ** 2 / n_c) / (n_c - 1)
    v_t = (variant["sum_squares"] - variant["sum"] ** 2 / n_t) / (n_t - 1)
    lift, lift_variance = (m_t - m_c) / m_c, v_t / (n_t * m_c**2) + m_t**2 * v_c / (n_c * m_c**4)
    precision = 1 / lift_variance + 1 / prior_stddev**2
    mean, sd = (lift / lift_variance + prior_mean / prior_stddev**2) / precision, math.sqrt(1 / precision)
    return stats.norm.cdf(mean / sd), list(stats.norm.interval(0.95, mean, sd))


def test_a_metric_prior_replaces_the_experiment_default_in_the_current_result(api_client, project):
    experiment = launched_experiment(project)
    experiment.stats_config = {"bayesian": {"prior": {"mean": 0.5, "stddev": 0.1}}}
    experiment.save(update_fields=["stats_config"])
    exposed(project, control=60, test=60)
    metric = {**METRIC, "prior": {"mean": -0.2, "stddev": 0.25}}
    query = {"kind": "ExperimentQuery", "experiment_id": experiment.pk}

    own = post(api_client, project, {**query, "metric": metric}).json()
    default = post(api_client, project, {**query, "metric": METRIC}).json()
    flat = post(api_client, project, {**query, "metric": {**METRIC, "prior": {"proper": False}}}).json()

    ((own_variant,), (default_variant,)) = own["variant_results"], default["variant_results"]
    chance, interval = _posterior_reference(own["baseline"], own_variant, -0.2, 0.25)
    assert own_variant["chance_to_win"] == pytest.approx(chance, abs=1e-6)
    assert own_variant["credible_interval"] == pytest.approx(interval, abs=1e-6)
    chance, interval = _posterior_reference(default["baseline"], default_variant, 0.5, 0.1)
    assert default_variant["credible_interval"] == pytest.approx(interval, abs=1e-6)
    assert own_variant["credible_interval"] != pytest.approx(default_variant["credible_interval"], abs=1e-3)
    (flat_variant,) = flat["variant_results"]
    # Every test unit buys once (no variance), every second control unit: lift 1, Var = 1²·v_C/(n_C·0.5⁴).
    lift_sd = math.sqrt(((30 - 30**2 / 60) / 59) / (60 * 0.5**4))
    assert flat_variant["credible_interval"] == pytest.approx(list(stats.norm.interval(0.95, 1.0, lift_sd)), abs=1e-6)


def test_the_stored_daily_results_use_the_metric_prior(project):
    experiment = launched_experiment(project)
    metric = {**METRIC, "uuid": "with-prior", "prior": {"mean": 0.1, "stddev": 0.2}}
    experiment.metrics = [metric]
    experiment.save(update_fields=["metrics"])
    exposed(project, control=60, test=60)

    daily_results_compute(experiment_id=experiment.pk)
    recalculation, _ = timeseries_recalculation_request(experiment=experiment, metric=metric, fingerprint="f" * 64)
    timeseries_recalculation_run(recalculation_id=recalculation.pk)

    daily = ExperimentMetricResult.objects.get(
        experiment=experiment, fingerprint=experiment_metric_fingerprint(experiment, metric)
    )
    last_day = ExperimentMetricResult.objects.filter(experiment=experiment, fingerprint="f" * 64).latest("query_to")
    for result in (daily.result, last_day.result):
        (variant,) = result["variant_results"]
        chance, interval = _posterior_reference(result["baseline"], variant, 0.1, 0.2)
        assert variant["chance_to_win"] == pytest.approx(chance, abs=1e-6)
        assert variant["credible_interval"] == pytest.approx(interval, abs=1e-6)


def test_the_query_endpoint_needs_the_query_read_scope(make_client, user, project):
    experiment = launched_experiment(project)
    query = {"kind": "ExperimentExposureQuery", "experiment_id": experiment.pk}

    response = post(make_client(user, scopes=["experiment:read"]), project, query)
    assert (response.status_code, response.json()) == (
        403,
        missing_scope("query:read"),
    )
    assert post(make_client(user, scopes=["query:read"]), project, query).status_code == 200
