"""Inputs that used to reach a 500: malformed property filters, holdouts, exposure filters and extreme rates."""

import pytest

from experiments import messages
from experiments.models import Experiment
from experiments_api.exceptions import error_body
from flags import messages as flag_messages
from flags.models import FeatureFlag

pytestmark = pytest.mark.django_db


def invalid(detail, attr):
    return error_body(type="validation_error", code="invalid_input", detail=detail, attr=attr)


@pytest.mark.parametrize("properties", [["x"], [{"key": ["a"]}], [{"value": 1}], "nope"])
def test_release_condition_properties_must_be_filters_with_a_key(api_client, project, properties):
    response = api_client.post(
        f"/api/projects/{project.id}/feature_flags/",
        {"key": "bad-props", "filters": {"groups": [{"properties": properties, "rollout_percentage": 50}]}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == invalid(flag_messages.GROUP_PROPERTIES_NOT_LIST.format(index=0), "filters")
    assert FeatureFlag.objects.count() == 0


@pytest.mark.parametrize("holdout", [{"id": 1, "exclusion_percentage": "abc"}, {"exclusion_percentage": 10}, "h"])
def test_a_single_holdout_needs_an_id_and_a_percentage(api_client, project, holdout):
    response = api_client.post(
        f"/api/projects/{project.id}/feature_flags/",
        {"key": "bad-holdout", "filters": {"groups": [{"rollout_percentage": 50}], "holdout": holdout}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == invalid(flag_messages.HOLDOUT_INVALID, "filters")


def test_holdout_group_properties_must_be_filters(api_client, project):
    response = api_client.post(
        f"/api/projects/{project.id}/experiment_holdouts/",
        {"name": "H", "filters": [{"rollout_percentage": 10, "properties": ["x"]}]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == invalid(messages.HOLDOUT_GROUP_PROPERTIES_NOT_LIST.format(index=0), "filters")


@pytest.mark.parametrize(
    "custom_exposure_filter",
    ["string", ["list"], {"events": "x"}, {"events": ["x"]}, {"actions": [{"id": 1, "properties": ["p"]}]}],
)
def test_custom_exposure_filter_must_be_an_insight_filter(api_client, project, custom_exposure_filter):
    response = api_client.post(
        f"/api/projects/{project.id}/experiments/",
        {"name": "E", "feature_flag_key": "e", "parameters": {"custom_exposure_filter": custom_exposure_filter}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == invalid(messages.CUSTOM_EXPOSURE_FILTER_INVALID, "parameters")
    assert Experiment.objects.count() == 0


def test_ship_variant_with_release_to_everyone_on_a_flag_without_groups(api_client, project):
    url = f"/api/projects/{project.id}/experiments/"
    experiment = api_client.post(url, {"name": "E", "feature_flag_key": "e"}, format="json").json()
    api_client.post(f"{url}{experiment['id']}/launch/")
    flag = FeatureFlag.objects.get()
    flag.filters = {**flag.filters, "groups": None}
    flag.save()

    response = api_client.post(
        f"{url}{experiment['id']}/ship_variant/", {"variant_key": "test", "release_to_everyone": True}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert FeatureFlag.objects.get().filters["groups"] == [{"properties": [], "rollout_percentage": 100}]


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
    assert response.json() == invalid(messages.RUNNING_TIME_OUT_OF_RANGE, "exposure_rate_per_day")
