"""The health block on every metric result (current, /query/, stored daily): findings with code, severity and
message, the SRM block and the `$multiple` share, from the experiment's real exposures and flag."""

import datetime as dt

import pytest

from experiments import messages
from experiments.results.current import current_metric_result, metric_results_as_of
from experiments.stats import srm_p_value
from tests.factories import ExperimentFactory, FeatureFlagFactory
from tests.test_experiment_query import METRIC, START, exposed, launched_experiment, post
from tests.test_metric_aggregation import day_boundaries

pytestmark = pytest.mark.django_db


def test_a_healthy_result_has_no_findings_and_healthy_blocks(api_client, project):
    experiment = launched_experiment(project)
    experiment.metrics = [METRIC]
    experiment.save()
    exposed(project, control=60, test=64)

    body = post(
        api_client, project, {"kind": "ExperimentQuery", "experiment_id": experiment.pk, "metric": METRIC}
    ).json()

    assert body["health"] == {
        "findings": [],
        "srm": {
            "p_value": pytest.approx(srm_p_value([60, 64], [50, 50]), rel=1e-12),
            "expected": {"control": 62.0, "test": 62.0},
            "observed": {"control": 60, "test": 64},
            "status": "healthy",
        },
        "multiple_exposures": {"count": 0, "share": 0.0, "status": "healthy"},
    }


def skewed_health(project) -> dict:
    """The health of a result with 4 of 64 units seen in both variants and 30 units per arm."""
    experiment = launched_experiment(project)
    experiment.metrics = [METRIC]
    experiment.save()
    exposed(project, control=30, test=30, multiple=4)
    return current_metric_result(experiment=experiment, metric=METRIC)["health"]


def assert_skewed_findings(health: dict) -> None:
    assert health["findings"] == [
        {
            "code": "multiple_exposures",
            "severity": "warning",
            "message": messages.HEALTH_MULTIPLE_EXPOSURES.format(share=4 / 64),
        },
        {
            "code": "too_few_exposures",
            "severity": "info",
            "message": messages.HEALTH_TOO_FEW_EXPOSURES.format(minimum=50),
        },
    ]
    assert health["multiple_exposures"] == {"count": 4, "share": 4 / 64, "status": "unhealthy"}
    assert health["srm"] == {
        "p_value": 1.0,
        "expected": {"control": 30.0, "test": 30.0},
        "observed": {"control": 30, "test": 30},
        "status": "healthy",
    }


@pytest.mark.every_database
def test_a_large_multiple_share_and_too_few_exposures_are_findings(project):
    assert_skewed_findings(skewed_health(project))


def test_no_exposures_no_metric_and_an_inactive_flag_while_running(project):
    flag = FeatureFlagFactory(project=project, key="checkout-flow", active=False)
    experiment = ExperimentFactory(project=project, feature_flag=flag, start_date=START, end_date=None)

    (result,) = metric_results_as_of(experiment=experiment, metric=METRIC, boundaries=[START + dt.timedelta(days=2)])

    assert [(finding["code"], finding["severity"]) for finding in result["health"]["findings"]] == [
        ("zero_exposures", "critical"),
        ("no_metric", "warning"),
        ("flag_off_while_running", "warning"),
    ]
    assert result["health"]["multiple_exposures"]["status"] == "not-enough-traffic"


def test_a_variant_served_to_everyone_while_running_is_a_finding(project):
    flag = FeatureFlagFactory(project=project, key="checkout-flow")
    flag.filters = {
        "groups": [{"properties": [], "rollout_percentage": 100}],
        "multivariate": {
            "variants": [{"key": "control", "rollout_percentage": 0}, {"key": "test", "rollout_percentage": 100}]
        },
    }
    flag.save()
    experiment = ExperimentFactory(project=project, feature_flag=flag, start_date=START, metrics=[METRIC])
    exposed(project, control=0, test=60)

    health = metric_results_as_of(experiment=experiment, metric=METRIC, boundaries=[START + dt.timedelta(days=3)])[0][
        "health"
    ]

    assert health["findings"][0] == {
        "code": "variant_forced_while_running",
        "severity": "warning",
        "message": messages.HEALTH_VARIANT_FORCED_WHILE_RUNNING.format(variant="test"),
    }
    assert health["srm"] is None


def test_stored_daily_results_carry_health_as_of_each_day(project):
    experiment = launched_experiment(project)
    experiment.metrics = [METRIC]
    experiment.save()
    exposed(project, control=60, test=60, multiple=3)
    experiment.project.timezone = "UTC"
    results = metric_results_as_of(experiment=experiment, metric=METRIC, boundaries=day_boundaries(experiment, 2))
    assert [result["health"]["multiple_exposures"]["count"] for result in results] == [0, 3]
    assert [sum(result["health"]["srm"]["observed"].values()) for result in results] == [
        result["baseline"]["number_of_samples"] + result["variant_results"][0]["number_of_samples"]
        for result in results
    ]
