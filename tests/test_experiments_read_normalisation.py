"""Read-time normalisation (§3.2): legacy metrics show the experiment's dates; variants carry split_percent."""

import datetime as dt

import pytest

from tests.factories import ExperimentFactory, FeatureFlagFactory, SavedMetricFactory

pytestmark = pytest.mark.django_db

START = dt.datetime(2025, 1, 10, 12, 0, tzinfo=dt.UTC)
LEGACY_TRENDS = {
    "kind": "ExperimentTrendsQuery",
    "uuid": "legacy-1",
    "count_query": {"kind": "TrendsQuery", "series": [], "dateRange": {"date_from": "-7d"}},
}


def test_legacy_metric_date_ranges_show_the_experiment_dates(api_client, project):
    experiment = ExperimentFactory(
        project=project,
        feature_flag=FeatureFlagFactory(project=project),
        start_date=START,
        metrics=[LEGACY_TRENDS],
        parameters={"feature_flag_variants": [{"key": "control", "rollout_percentage": 50}]},
    )

    body = api_client.get(f"/api/projects/{project.id}/experiments/{experiment.id}/").json()

    assert body["metrics"][0]["count_query"]["dateRange"] == {
        "date_from": "2025-01-10T12:00:00+00:00",
        "date_to": "",
        "explicitDate": True,
    }
    assert body["parameters"]["feature_flag_variants"] == [
        {"key": "control", "rollout_percentage": 50, "split_percent": 50}
    ]


def test_saved_legacy_metric_queries_are_normalised_too(api_client, project):
    experiment = ExperimentFactory(project=project, feature_flag=FeatureFlagFactory(project=project))
    saved = SavedMetricFactory(project=project, query=LEGACY_TRENDS)
    experiment.saved_metric_links.create(saved_metric=saved, metadata={"type": "primary"})

    body = api_client.get(f"/api/projects/{project.id}/experiments/{experiment.id}/").json()

    query = body["saved_metrics"][0]["query"]
    assert query["count_query"]["dateRange"] == {"date_from": "", "date_to": "", "explicitDate": True}
    assert len(query["fingerprint"]) == 64
