"""GET /experiments/eligible_feature_flags/ (§4.10): eligibility, filters, its own pagination and scope."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from experiments import messages
from experiments_api.exceptions import error_body
from flags.models import FeatureFlag
from tests.factories import ExperimentFactory, FeatureFlagFactory, ProjectFactory, member_of
from tests.helpers import NOT_A_MEMBER, missing_scope

FLAG_FIELDS = {
    "id",
    "key",
    "name",
    "filters",
    "active",
    "deleted",
    "ensure_experience_continuity",
    "evaluation_runtime",
    "tags",
    "evaluation_tags",
    "version",
    "creation_context",
    "experiment_set",
    "created_by",
    "created_at",
    "last_modified_by",
    "updated_at",
}


def eligible_url(project) -> str:
    return f"/api/projects/{project.id}/experiments/eligible_feature_flags/"


def variants(*keys: str) -> dict:
    share = 100 / len(keys)
    return {"multivariate": {"variants": [{"key": key, "rollout_percentage": share} for key in keys]}}


def eligible_keys(client, project, query=None) -> list[str]:
    response = client.get(eligible_url(project), query or {})
    assert response.status_code == 200, response.json()
    return [flag["key"] for flag in response.json()["results"]]


def flags_created_in_order(project, *keys: str, **fields) -> list[FeatureFlag]:
    """Flags with created_at one minute apart, in the given order (so -created_at lists them reversed)."""
    flags = []
    for minute, key in enumerate(keys):
        flag = FeatureFlagFactory(project=project, key=key, **fields)
        FeatureFlag.objects.filter(pk=flag.pk).update(
            created_at=timezone.now() - dt.timedelta(hours=1) + dt.timedelta(minutes=minute)
        )
        flags.append(flag)
    return flags


def test_only_live_multivariate_flags_with_control_first_are_eligible(api_client, project):
    flags_created_in_order(project, "control-test", "with-experiment")
    FeatureFlagFactory(project=project, key="three", filters=variants("control", "a", "b"))
    FeatureFlagFactory(project=project, key="boolean", filters={"groups": [{"rollout_percentage": 100}]})
    FeatureFlagFactory(project=project, key="one-variant", filters=variants("control"))
    FeatureFlagFactory(project=project, key="control-second", filters=variants("test", "control"))
    FeatureFlagFactory(project=project, key="capital-control", filters=variants("Control", "test"))
    FeatureFlagFactory(project=project, key="deleted", deleted=True)
    FeatureFlagFactory(key="other-project")
    experiment = ExperimentFactory(project=project, feature_flag=FeatureFlag.objects.get(key="with-experiment"))

    response = api_client.get(eligible_url(project))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "count"}
    assert body["count"] == 3
    assert [flag["key"] for flag in body["results"]] == ["three", "with-experiment", "control-test"]
    assert all(set(flag) == FLAG_FIELDS for flag in body["results"])
    # Flags already used by an experiment stay eligible and say so.
    assert body["results"][1]["experiment_set"] == [experiment.id]


def test_search_matches_key_or_name(api_client, project):
    FeatureFlagFactory(project=project, key="checkout-button", name="Button")
    FeatureFlagFactory(project=project, key="pricing", name="New CHECKOUT page")
    FeatureFlagFactory(project=project, key="signup", name="Signup")

    assert sorted(eligible_keys(api_client, project, {"search": "checkout"})) == ["checkout-button", "pricing"]
    assert eligible_keys(api_client, project, {"search": "nothing"}) == []


@pytest.mark.parametrize(
    ("active", "expected"), [("true", ["on"]), ("True", ["on"]), ("false", ["off"]), ("1", ["off"])]
)
def test_active_filter(api_client, project, active, expected):
    FeatureFlagFactory(project=project, key="on", active=True)
    FeatureFlagFactory(project=project, key="off", active=False)

    assert eligible_keys(api_client, project, {"active": active}) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("true", ["tagged"]), ("1", ["tagged"]), ("yes", ["tagged"]), ("false", ["untagged"])]
)
def test_has_evaluation_tags_filter(api_client, project, value, expected):
    FeatureFlagFactory(project=project, key="tagged", evaluation_tags=["web"])
    FeatureFlagFactory(project=project, key="untagged")

    assert eligible_keys(api_client, project, {"has_evaluation_tags": value}) == expected


def test_created_by_and_evaluation_runtime_filters(api_client, project, user):
    FeatureFlagFactory(project=project, key="mine-server", created_by=user, evaluation_runtime="server")
    FeatureFlagFactory(project=project, key="mine-all", created_by=user)
    FeatureFlagFactory(project=project, key="theirs-server", created_by=member_of(project), evaluation_runtime="server")

    assert sorted(eligible_keys(api_client, project, {"created_by_id": user.id})) == ["mine-all", "mine-server"]
    assert sorted(eligible_keys(api_client, project, {"evaluation_runtime": "server"})) == [
        "mine-server",
        "theirs-server",
    ]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (None, ["b-flag", "c-flag", "a-flag"]),
        ("-created_at", ["b-flag", "c-flag", "a-flag"]),
        ("created_at", ["a-flag", "c-flag", "b-flag"]),
        ("key", ["a-flag", "b-flag", "c-flag"]),
        ("-key", ["c-flag", "b-flag", "a-flag"]),
        ("name", ["c-flag", "a-flag", "b-flag"]),
    ],
)
def test_order(api_client, project, order, expected):
    for flag, name in zip(flags_created_in_order(project, "a-flag", "c-flag", "b-flag"), ("Y", "X", "Z"), strict=True):
        FeatureFlag.objects.filter(pk=flag.pk).update(name=name)

    assert eligible_keys(api_client, project, {"order": order} if order else {}) == expected


@pytest.mark.parametrize("order", ["active", "-version", "--key"])
def test_an_order_outside_the_allow_list_is_a_400(api_client, project, order):
    response = api_client.get(eligible_url(project), {"order": order})

    assert response.status_code == 400
    assert response.json() == error_body(
        type="validation_error",
        code="invalid_input",
        detail=messages.INVALID_ORDER_FIELD.format(order=order),
        attr="order",
    )


def test_the_page_defaults_to_20_and_is_capped_at_100(api_client, project):
    flags_created_in_order(project, *(f"flag-{index:03}" for index in range(101)))

    default = api_client.get(eligible_url(project)).json()
    capped = api_client.get(eligible_url(project), {"limit": 500}).json()
    offset = api_client.get(eligible_url(project), {"limit": 3, "offset": 99}).json()
    negative_offset = api_client.get(eligible_url(project), {"limit": 1, "offset": -5}).json()

    assert len(default["results"]) == 20
    assert default["count"] == 101
    assert len(capped["results"]) == 100
    assert capped["count"] == 101
    assert [flag["key"] for flag in offset["results"]] == ["flag-001", "flag-000"]
    assert [flag["key"] for flag in negative_offset["results"]] == ["flag-100"]


@pytest.mark.parametrize("query", [{"limit": "ten"}, {"offset": "1.5"}, {"limit": ""}])
def test_a_non_integer_limit_or_offset_is_a_plain_error(api_client, project, query):
    """PostHog answers these with `{"error": ...}`, not the usual envelope (§10.7, kept)."""
    response = api_client.get(eligible_url(project), query)

    assert response.status_code == 400
    assert response.json() == {"error": messages.INVALID_LIMIT_OR_OFFSET}


def test_the_number_of_queries_does_not_grow_with_the_page(api_client, project, user, django_assert_num_queries):
    def flags_with_experiments(count):
        for _ in range(count):
            flag = FeatureFlagFactory(project=project, created_by=user, last_modified_by=user)
            ExperimentFactory(project=project, feature_flag=flag)

    flags_with_experiments(2)
    api_client.get(eligible_url(project))
    with CaptureQueriesContext(connection) as two_flags:
        assert api_client.get(eligible_url(project)).json()["count"] == 2

    flags_with_experiments(6)

    with django_assert_num_queries(len(two_flags.captured_queries)):
        results = api_client.get(eligible_url(project)).json()["results"]
    assert len(results) == 8
    assert all(len(flag["experiment_set"]) == 1 for flag in results)


def test_it_needs_feature_flag_read_not_an_experiment_scope(make_client, user, project):
    FeatureFlagFactory(project=project, key="eligible")

    refused = make_client(user, scopes=["experiment:write"]).get(eligible_url(project))

    assert refused.status_code == 403
    assert refused.json() == missing_scope("feature_flag:read")
    for scopes in (["feature_flag:read"], ["feature_flag:write"]):
        assert eligible_keys(make_client(user, scopes=scopes), project) == ["eligible"]


def test_a_user_of_another_organization_sees_nothing(make_client, project):
    FeatureFlagFactory(project=project, key="ours")
    outsider_project = ProjectFactory()
    outsider = make_client(member_of(outsider_project))
    FeatureFlagFactory(project=outsider_project, key="theirs")

    response = outsider.get(eligible_url(project))

    assert response.status_code == 403
    assert response.json() == NOT_A_MEMBER
    assert eligible_keys(outsider, outsider_project) == ["theirs"]
