"""The experiments list's rows (experiments.api.serializers.representation): every experiment in the list reads
exactly, key for key and in the same order, as its detail (ExperimentSerializer on a model instance), for
experiments in every state and with every optional relation set or missing."""

import datetime as dt
import json

from django.utils import timezone

from experiments.models import ExperimentToSavedMetric
from tests.factories import (
    CohortFactory,
    ExperimentFactory,
    FeatureFlagFactory,
    HoldoutFactory,
    SavedMetricFactory,
    UserFactory,
    mean_metric,
)

LEGACY_TRENDS = {
    "kind": "ExperimentTrendsQuery",
    "count_query": {"kind": "TrendsQuery", "series": [{"event": "$pageview"}], "dateRange": {"date_from": "-7d"}},
}


def experiments_in_every_state(project, user) -> list[str]:
    now = timezone.now()
    holdout_creator = UserFactory(hedgehog_config={"color": "blue"}, role_at_organization="engineering")
    holdout = HoldoutFactory(project=project, created_by=holdout_creator, description="Ten percent")
    ExperimentFactory(project=project, name="draft without creator", description=None, parameters=None)
    ExperimentFactory(
        project=project,
        name="running with holdout and cohort",
        created_by=user,
        start_date=now - dt.timedelta(days=3),
        holdout=holdout,
        exposure_cohort=CohortFactory(project=project),
        metrics=[mean_metric(uuid="m1"), LEGACY_TRENDS],
        metrics_secondary=[mean_metric("purchase", uuid="m2")],
        parameters={
            "feature_flag_variants": [{"key": "control", "rollout_percentage": 50}, "not a variant"],
            "excluded_variants": ["test"],
        },
        exposure_criteria={"filterTestAccounts": True},
        stats_config={"method": "frequentist"},
        scheduling_config={"timeseries": True},
        only_count_matured_users=True,
        primary_metrics_ordered_uuids=["m1"],
        type="web",
    )
    ExperimentFactory(
        project=project,
        name="paused with a holdout of no creator",
        start_date=now - dt.timedelta(days=2),
        holdout=HoldoutFactory(project=project),
        feature_flag=FeatureFlagFactory(project=project, active=False, evaluation_tags=["web"]),
    )
    stopped = ExperimentFactory(
        project=project,
        name="stopped with saved metrics",
        created_by=user,
        start_date=now - dt.timedelta(days=9, microseconds=5),
        end_date=now - dt.timedelta(days=1),
        conclusion="won",
        conclusion_comment="Clear winner",
        metrics=[LEGACY_TRENDS],
        parameters={"feature_flag_variants": []},
        type=None,
        stats_config=None,
    )
    for query, metadata in ((LEGACY_TRENDS, {"type": "primary"}), (None, {})):
        saved_metric = SavedMetricFactory(project=project, **({} if query is None else {"query": query}))
        ExperimentToSavedMetric.objects.create(experiment=stopped, saved_metric=saved_metric, metadata=metadata)
    return ["stopped with saved metrics", "paused with a holdout of no creator", "running with holdout and cohort"]


def test_every_listed_experiment_reads_as_its_detail(api_client, project, user):
    newest_first = [*experiments_in_every_state(project, user), "draft without creator"]

    listed = api_client.get(f"/api/projects/{project.id}/experiments/").json()["results"]

    assert [experiment["name"] for experiment in listed] == newest_first
    for experiment in listed:
        detail = api_client.get(f"/api/projects/{project.id}/experiments/{experiment['id']}/").json()
        assert json.dumps(experiment) == json.dumps(detail), experiment["name"]
    by_name = {experiment["name"]: experiment for experiment in listed}
    stopped = by_name["stopped with saved metrics"]
    assert stopped["saved_metrics"][0]["query"]["count_query"]["dateRange"] == {
        "date_from": dt.datetime.fromisoformat(stopped["start_date"]).isoformat(),
        "date_to": dt.datetime.fromisoformat(stopped["end_date"]).isoformat(),
        "explicitDate": True,
    }
    assert stopped["saved_metrics"][1]["query"]["fingerprint"] != stopped["saved_metrics"][0]["query"]["fingerprint"]
    assert [experiment["status"] for experiment in listed] == ["stopped", "paused", "running", "draft"]
    assert by_name["running with holdout and cohort"]["holdout"]["created_by"]["hedgehog_config"] == {"color": "blue"}


def test_a_page_of_rows_after_the_first(api_client, project, user):
    experiments_in_every_state(project, user)

    page = api_client.get(f"/api/projects/{project.id}/experiments/?limit=2&offset=2").json()

    assert page["count"] == 4
    assert [experiment["name"] for experiment in page["results"]] == [
        "running with holdout and cohort",
        "draft without creator",
    ]
    detail = api_client.get(f"/api/projects/{project.id}/experiments/{page['results'][0]['id']}/").json()
    assert json.dumps(page["results"][0]) == json.dumps(detail)
