"""GET /experiments/ and /experiments/:id/ (§4.1, §4.3): filters, ordering, pagination, query count, isolation."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from experiments import messages
from experiments.models import Experiment, ExperimentToSavedMetric
from tests.factories import (
    ExperimentFactory,
    FeatureFlagFactory,
    HoldoutFactory,
    ProjectFactory,
    SavedMetricFactory,
    UserFactory,
    mean_metric,
    member_of,
)
from tests.helpers import NOT_A_MEMBER, NOT_FOUND, missing_scope, project_not_allowed_for_key, validation_error


def experiments_url(project) -> str:
    return f"/api/projects/{project.id}/experiments/"


def listed_names(client, project, query: str = "") -> list[str]:
    response = client.get(f"{experiments_url(project)}{query}")
    assert response.status_code == 200, response.json()
    return [experiment["name"] for experiment in response.json()["results"]]


def days_ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


def test_the_list_is_a_page_of_live_unarchived_experiments_newest_first(api_client, project):
    for name in ("first", "second", "third"):
        ExperimentFactory(project=project, name=name)
    ExperimentFactory(project=project, name="archived", archived=True)
    ExperimentFactory(project=project, name="deleted", deleted=True)
    ExperimentFactory(project=project, name="deleted and archived", deleted=True, archived=True)
    ExperimentFactory(name="other project")

    response = api_client.get(experiments_url(project))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert body["next"] is None
    assert body["previous"] is None
    assert [experiment["name"] for experiment in body["results"]] == ["third", "second", "first"]


@pytest.mark.parametrize(
    ("archived", "expected"),
    [("true", ["archived"]), ("TRUE", ["archived"]), ("false", ["live"]), ("yes", ["live"]), ("", ["live"])],
)
def test_archived_filter(api_client, project, archived, expected):
    ExperimentFactory(project=project, name="live")
    ExperimentFactory(project=project, name="archived", archived=True)
    ExperimentFactory(project=project, name="archived but deleted", archived=True, deleted=True)

    assert listed_names(api_client, project, f"?archived={archived}") == expected


@pytest.fixture
def experiments_in_every_state(project):
    ExperimentFactory(project=project, name="draft")
    ExperimentFactory(project=project, name="running", start_date=days_ago(3))
    ExperimentFactory(
        project=project,
        name="paused",
        start_date=days_ago(3),
        feature_flag=FeatureFlagFactory(project=project, active=False),
    )
    ExperimentFactory(project=project, name="stopped", start_date=days_ago(3), end_date=days_ago(1))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("draft", ["draft"]),
        ("running", ["running"]),
        ("RUNNING", ["running"]),
        ("paused", ["paused"]),
        ("stopped", ["stopped"]),
        ("complete", ["stopped"]),
        ("all", ["stopped", "paused", "running", "draft"]),
    ],
)
def test_status_filter(api_client, project, experiments_in_every_state, status, expected):
    assert listed_names(api_client, project, f"?status={status}") == expected


def test_each_experiment_reports_its_status(api_client, project, experiments_in_every_state):
    results = api_client.get(experiments_url(project)).json()["results"]

    assert {experiment["name"]: experiment["status"] for experiment in results} == {
        "draft": "draft",
        "running": "running",
        "paused": "paused",
        "stopped": "stopped",
    }


def test_search_created_by_and_flag_filters(api_client, project, user):
    other_user = member_of(project)
    flag = FeatureFlagFactory(project=project)
    ExperimentFactory(project=project, name="Checkout button", created_by=user)
    ExperimentFactory(project=project, name="New CHECKOUT flow", created_by=other_user, feature_flag=flag)
    ExperimentFactory(project=project, name="Pricing page", created_by=other_user)

    assert listed_names(api_client, project, "?search=checkout") == ["New CHECKOUT flow", "Checkout button"]
    assert listed_names(api_client, project, f"?created_by_id={other_user.id}") == ["Pricing page", "New CHECKOUT flow"]
    assert listed_names(api_client, project, f"?feature_flag_id={flag.id}") == ["New CHECKOUT flow"]
    assert listed_names(api_client, project, f"?search=page&created_by_id={user.id}") == []


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("name", ["alpha", "bravo", "charlie"]),
        ("-name", ["charlie", "bravo", "alpha"]),
        ("created_at", ["bravo", "alpha", "charlie"]),
        ("-created_at", ["charlie", "alpha", "bravo"]),
        ("start_date", ["charlie", "alpha", "bravo"]),
        ("-start_date", ["alpha", "charlie", "bravo"]),
        ("end_date", ["charlie", "bravo", "alpha"]),  # ties (no end date) newest id first
        ("updated_at", ["alpha", "bravo", "charlie"]),
        # Duration is end − start, or now − start while running; drafts have none and come last.
        ("duration", ["alpha", "charlie", "bravo"]),
        ("-duration", ["charlie", "alpha", "bravo"]),
        # draft < running < stopped
        ("status", ["bravo", "alpha", "charlie"]),
        ("-status", ["charlie", "alpha", "bravo"]),
        # By the creator's first name, falling back to the email when it is empty.
        ("created_by", ["charlie", "bravo", "alpha"]),
        ("-created_by", ["alpha", "bravo", "charlie"]),
    ],
)
def test_order(api_client, project, order, expected):
    creators = {
        "alpha": UserFactory(first_name="zed"),
        "bravo": UserFactory(first_name="", email="mia@example.com"),
        "charlie": UserFactory(first_name="Ann"),
    }
    dates = {
        "alpha": (days_ago(2), None),  # running for 2 days
        "bravo": (None, None),  # draft
        "charlie": (days_ago(10), days_ago(5)),  # ran for 5 days
    }
    created = {"alpha": days_ago(20), "bravo": days_ago(30), "charlie": days_ago(10)}
    for name in ("alpha", "bravo", "charlie"):
        start_date, end_date = dates[name]
        experiment = ExperimentFactory(
            project=project, name=name, created_by=creators[name], start_date=start_date, end_date=end_date
        )
        Experiment.objects.filter(pk=experiment.pk).update(created_at=created[name])

    assert listed_names(api_client, project, f"?order={order}") == expected


@pytest.mark.parametrize("order", ["feature_flag", "--name", "name-", "-", "id; drop table", "Name"])
def test_an_order_outside_the_allow_list_is_a_400(api_client, project, order):
    response = api_client.get(experiments_url(project), {"order": order})

    assert response.status_code == 400
    assert response.json() == validation_error(messages.INVALID_ORDER_FIELD.format(order=order), "order")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "finished"}, validation_error(messages.INVALID_STATUS_FILTER.format(status="finished"), "status")),
        (
            {"feature_flag_id": "abc"},
            validation_error(messages.MUST_BE_INTEGER.format(name="feature_flag_id"), "feature_flag_id"),
        ),
        (
            {"created_by_id": "me"},
            validation_error(messages.MUST_BE_INTEGER.format(name="created_by_id"), "created_by_id"),
        ),
        ({"limit": "0"}, validation_error("limit must be a positive integer.", "limit")),
        ({"offset": "-1"}, validation_error("offset must be a non-negative integer.", "offset")),
    ],
)
def test_bad_query_parameters_are_a_400(api_client, project, query, expected):
    response = api_client.get(experiments_url(project), query)

    assert response.status_code == 400
    assert response.json() == expected


def test_limit_and_offset_paginate(api_client, project):
    for index in range(5):
        ExperimentFactory(project=project, name=f"e{index}")

    first = api_client.get(experiments_url(project), {"limit": 2}).json()
    last = api_client.get(experiments_url(project), {"limit": 2, "offset": 4}).json()

    assert first["count"] == 5
    assert [experiment["name"] for experiment in first["results"]] == ["e4", "e3"]
    assert first["next"].endswith(f"{experiments_url(project)}?limit=2&offset=2")
    assert first["previous"] is None
    assert [experiment["name"] for experiment in last["results"]] == ["e0"]
    assert last["next"] is None


def _experiments_with_everything(project, user, count: int) -> None:
    """Experiments with a creator, a holdout, metrics and two saved-metric links each."""
    for _ in range(count):
        experiment = ExperimentFactory(
            project=project,
            created_by=user,
            holdout=HoldoutFactory(project=project, created_by=user),
            metrics=[mean_metric(uuid="m")],
            primary_metrics_ordered_uuids=["m"],
            start_date=days_ago(1),
        )
        for kind in ("primary", "secondary"):
            ExperimentToSavedMetric.objects.create(
                experiment=experiment, saved_metric=SavedMetricFactory(project=project), metadata={"type": kind}
            )


def test_the_number_of_queries_does_not_grow_with_the_page(api_client, project, user, django_assert_num_queries):
    _experiments_with_everything(project, user, 2)
    api_client.get(experiments_url(project))  # warm-up: anything cached per process is loaded
    with CaptureQueriesContext(connection) as two_experiments:
        response = api_client.get(experiments_url(project))
    assert len(response.json()["results"]) == 2

    _experiments_with_everything(project, user, 4)

    with django_assert_num_queries(len(two_experiments.captured_queries)):
        response = api_client.get(experiments_url(project))
    results = response.json()["results"]
    assert len(results) == 6
    assert all(len(experiment["saved_metrics"]) == 2 for experiment in results)
    assert all(experiment["holdout"]["created_by"]["id"] == user.id for experiment in results)


def test_retrieve_returns_the_full_experiment(api_client, project, user):
    experiment = ExperimentFactory(project=project, created_by=user, name="Checkout")

    response = api_client.get(f"{experiments_url(project)}{experiment.id}/")

    assert response.status_code == 200
    assert response.json()["id"] == experiment.id
    assert response.json()["feature_flag_key"] == experiment.feature_flag.key
    assert response.json()["created_by"]["id"] == user.id


def test_search_does_not_filter_the_detail_lookup(api_client, project):
    """PostHog applies ?search= to detail lookups too (§10.6); we only filter the list."""
    experiment = ExperimentFactory(project=project, name="Checkout")

    response = api_client.get(f"{experiments_url(project)}{experiment.id}/", {"search": "no match"})

    assert response.status_code == 200


@pytest.mark.parametrize("experiment_id", ["987654321", "abc"])
def test_an_unknown_experiment_is_a_404(api_client, project, experiment_id):
    response = api_client.get(f"{experiments_url(project)}{experiment_id}/")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_the_current_project_alias(api_client, project):
    ExperimentFactory(project=project, name="mine")

    response = api_client.get("/api/projects/@current/experiments/")

    assert response.status_code == 200
    assert [experiment["name"] for experiment in response.json()["results"]] == ["mine"]


def test_experiment_read_is_enough_to_list_and_retrieve(make_client, user, project):
    experiment = ExperimentFactory(project=project)
    client = make_client(user, scopes=["experiment:read"])

    assert client.get(experiments_url(project)).status_code == 200
    assert client.get(f"{experiments_url(project)}{experiment.id}/").status_code == 200


def test_listing_needs_an_experiment_scope(make_client, user, project):
    experiment = ExperimentFactory(project=project)
    client = make_client(user, scopes=["feature_flag:read"])
    refused = missing_scope("experiment:read")

    for url in (experiments_url(project), f"{experiments_url(project)}{experiment.id}/"):
        response = client.get(url)

        assert response.status_code == 403
        assert response.json() == refused
    assert APIClient().get(experiments_url(project)).status_code == 401


def test_a_user_of_another_organization_sees_nothing(make_client, project):
    experiment = ExperimentFactory(project=project)
    outsider_project = ProjectFactory()
    outsider = make_client(member_of(outsider_project))
    ExperimentFactory(project=outsider_project, name="theirs")

    for url in (experiments_url(project), f"{experiments_url(project)}{experiment.id}/"):
        response = outsider.get(url)

        assert response.status_code == 403
        assert response.json() == NOT_A_MEMBER
    # In their own project they see only their own experiments, also when naming ours.
    assert listed_names(outsider, outsider_project) == ["theirs"]
    assert outsider.get(f"{experiments_url(outsider_project)}{experiment.id}/").json() == NOT_FOUND
    assert listed_names(outsider, outsider_project, f"?feature_flag_id={experiment.feature_flag_id}") == []


def test_a_key_limited_to_another_project_is_refused(make_client, user, project):
    other_project = ProjectFactory(organization=project.organization)
    member_of(other_project, user)
    client = make_client(user, scoped_projects=[other_project.id])

    response = client.get(experiments_url(project))

    assert response.status_code == 403
    assert response.json() == project_not_allowed_for_key(project.id)
