"""/api/projects/:project_id/feature_flags/: CRUD, validation, soft delete, filters, scopes and tenancy."""

import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from experiments_api.exceptions import DomainError
from flags import messages as flag_messages
from flags import validators
from flags.models import FeatureFlag
from flags.services import feature_flag_create, feature_flag_update
from tests.factories import ExperimentFactory, FeatureFlagFactory, ProjectFactory, UserFactory, member_of
from tests.helpers import NOT_A_MEMBER, missing_scope, validation_error

CONTROL_TEST = [
    {"key": "control", "name": "Control", "rollout_percentage": 50},
    {"key": "test", "name": "Test", "rollout_percentage": 50},
]


def flags_url(project) -> str:
    return f"/api/projects/{project.pk}/feature_flags/"


def flag_url(project, flag) -> str:
    return f"/api/projects/{project.pk}/feature_flags/{flag.pk}/"


def multivariate(variants: list) -> dict:
    return {"groups": [{"properties": [], "rollout_percentage": 100}], "multivariate": {"variants": variants}}


def test_create_returns_the_full_flag(api_client, project, user):
    filters = {**multivariate(CONTROL_TEST), "payloads": {"test": '{"color": "blue"}'}}

    response = api_client.post(
        flags_url(project),
        {"key": "new-checkout", "name": "New checkout", "filters": filters, "tags": ["checkout"]},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    flag = FeatureFlag.objects.get()
    assert body == {
        "id": flag.pk,
        "key": "new-checkout",
        "name": "New checkout",
        "filters": filters,
        "active": True,
        "deleted": False,
        "ensure_experience_continuity": False,
        "evaluation_runtime": "all",
        "tags": ["checkout"],
        "evaluation_tags": [],
        "version": 1,
        "creation_context": "feature_flags",
        "experiment_set": [],
        "created_by": body["created_by"],
        "created_at": body["created_at"],
        "last_modified_by": body["last_modified_by"],
        "updated_at": body["updated_at"],
    }
    assert body["created_by"]["id"] == user.pk
    assert body["created_by"]["email"] == user.email
    assert body["last_modified_by"]["id"] == user.pk
    assert flag.project == project
    assert flag.created_by == user


def test_create_with_a_key_only_gives_a_flag_without_conditions(api_client, project):
    response = api_client.post(flags_url(project), {"key": "bare"}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["filters"] == {}
    assert response.json()["name"] == ""


def test_a_boolean_flag_may_have_a_payload_for_true(api_client, project):
    filters = {"groups": [{"properties": [], "rollout_percentage": 30}], "payloads": {"true": "1"}}

    response = api_client.post(flags_url(project), {"key": "bool-flag", "filters": filters}, format="json")

    assert response.status_code == 201, response.json()
    assert FeatureFlag.objects.get().filters == filters


def test_variant_percentages_may_be_fractions_summing_to_100(api_client, project):
    variants = [
        {"key": "control", "rollout_percentage": 33.33},
        {"key": "a", "rollout_percentage": 33.33},
        {"key": "b", "rollout_percentage": 33.34},
    ]

    response = api_client.post(flags_url(project), {"key": "thirds", "filters": multivariate(variants)}, format="json")

    assert response.status_code == 201, response.json()


def test_a_duplicate_key_is_refused_on_key(api_client, project):
    FeatureFlagFactory(project=project, key="taken")

    response = api_client.post(flags_url(project), {"key": "taken"}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error(flag_messages.DUPLICATE_FLAG_KEY, "key", code="unique")
    assert FeatureFlag.objects.count() == 1


def test_a_soft_deleted_flag_does_not_hold_its_key(api_client, project):
    FeatureFlagFactory(project=project, key="recycled", deleted=True)

    response = api_client.post(flags_url(project), {"key": "recycled"}, format="json")

    assert response.status_code == 201, response.json()
    assert FeatureFlag.objects.filter(key="recycled").count() == 2


def test_the_same_key_is_free_in_another_project(api_client, project):
    FeatureFlagFactory(key="shared-key")

    response = api_client.post(flags_url(project), {"key": "shared-key"}, format="json")

    assert response.status_code == 201, response.json()


VALID_GROUPS = [{"properties": [], "rollout_percentage": 100}]
TWENTY_ONE_VARIANTS = [{"key": f"v{i}", "rollout_percentage": 5 if i < 20 else 0} for i in range(21)]

BAD_CREATE_INPUTS = [
    # key
    ({"name": "no key"}, validation_error("This field is required.", "key", code="required")),
    ({"key": None}, validation_error("This field may not be null.", "key", code="null")),
    ({"key": ["a"]}, validation_error("Not a valid string.", "key")),
    ({"key": ""}, validation_error("This field may not be blank.", "key", code="blank")),
    (
        {"key": "k" * 401},
        validation_error("Ensure this field has no more than 400 characters.", "key", code="max_length"),
    ),
    ({"key": "has space"}, validation_error(flag_messages.INVALID_FLAG_KEY, "key", code="invalid_key")),
    ({"key": "dots.not.allowed"}, validation_error(flag_messages.INVALID_FLAG_KEY, "key", code="invalid_key")),
    # name
    ({"key": "k", "name": {"a": 1}}, validation_error("Not a valid string.", "name")),
    ({"key": "k", "name": None}, validation_error("This field may not be null.", "name", code="null")),
    (
        {"key": "k", "name": "n" * 4001},
        validation_error("Ensure this field has no more than 4000 characters.", "name", code="max_length"),
    ),
    # booleans
    ({"key": "k", "active": "maybe"}, validation_error("Must be a valid boolean.", "active")),
    ({"key": "k", "active": None}, validation_error("This field may not be null.", "active", code="null")),
    ({"key": "k", "deleted": [True]}, validation_error("Must be a valid boolean.", "deleted")),
    (
        {"key": "k", "ensure_experience_continuity": "sometimes"},
        validation_error("Must be a valid boolean.", "ensure_experience_continuity"),
    ),
    # choices
    (
        {"key": "k", "evaluation_runtime": "edge"},
        validation_error('"edge" is not a valid choice.', "evaluation_runtime", code="invalid_choice"),
    ),
    (
        {"key": "k", "creation_context": "somewhere"},
        validation_error('"somewhere" is not a valid choice.', "creation_context", code="invalid_choice"),
    ),
    # tags
    (
        {"key": "k", "tags": "one"},
        validation_error('Expected a list of items but got type "str".', "tags", code="not_a_list"),
    ),
    (
        {"key": "k", "tags": ["t" * 256]},
        validation_error("Ensure this field has no more than 255 characters.", "tags__0", code="max_length"),
    ),
    ({"key": "k", "evaluation_tags": [{"a": 1}]}, validation_error("Not a valid string.", "evaluation_tags__0")),
    # filters: structure
    ({"key": "k", "filters": None}, validation_error("This field may not be null.", "filters", code="null")),
    ({"key": "k", "filters": []}, validation_error(flag_messages.FLAG_FILTERS_NOT_OBJECT, "filters")),
    ({"key": "k", "filters": "groups"}, validation_error(flag_messages.FLAG_FILTERS_NOT_OBJECT, "filters")),
    ({"key": "k", "filters": {"groups": {}}}, validation_error(flag_messages.GROUPS_NOT_LIST, "filters")),
    (
        {"key": "k", "filters": {"groups": ["everyone"]}},
        validation_error(flag_messages.GROUP_NOT_OBJECT.format(index=0), "filters"),
    ),
    (
        {"key": "k", "filters": {"groups": [{"properties": {}, "rollout_percentage": 10}]}},
        validation_error(flag_messages.GROUP_PROPERTIES_NOT_LIST.format(index=0), "filters"),
    ),
    (
        {"key": "k", "filters": {"groups": [{"rollout_percentage": "50"}]}},
        validation_error(flag_messages.GROUP_ROLLOUT_INVALID.format(index=0), "filters"),
    ),
    (
        {"key": "k", "filters": {"groups": [*VALID_GROUPS, {"rollout_percentage": 150}]}},
        validation_error(flag_messages.GROUP_ROLLOUT_INVALID.format(index=1), "filters"),
    ),
    (
        {"key": "k", "filters": {"groups": [{"rollout_percentage": -1}]}},
        validation_error(flag_messages.GROUP_ROLLOUT_INVALID.format(index=0), "filters"),
    ),
    (
        {"key": "k", "filters": {"groups": [{"rollout_percentage": True}]}},
        validation_error(flag_messages.GROUP_ROLLOUT_INVALID.format(index=0), "filters"),
    ),
    (
        {"key": "k", "filters": {**multivariate(CONTROL_TEST), "groups": [{"variant": "other"}]}},
        validation_error(flag_messages.GROUP_VARIANT_UNKNOWN.format(index=0, variant="other"), "filters"),
    ),
    # filters: variants
    (
        {"key": "k", "filters": {"multivariate": CONTROL_TEST}},
        validation_error(flag_messages.MULTIVARIATE_NOT_OBJECT, "filters"),
    ),
    (
        {"key": "k", "filters": {"multivariate": {"variants": {"control": 100}}}},
        validation_error(flag_messages.MULTIVARIATE_VARIANTS_NOT_LIST, "filters"),
    ),
    (
        {"key": "k", "filters": multivariate(["control", "test"])},
        validation_error(flag_messages.MULTIVARIATE_VARIANT_NOT_OBJECT.format(index=0), "filters"),
    ),
    (
        {"key": "k", "filters": multivariate([CONTROL_TEST[0], {"name": "Test", "rollout_percentage": 50}])},
        validation_error(flag_messages.VARIANT_KEY_MISSING.format(index=1), "filters"),
    ),
    (
        {"key": "k", "filters": multivariate([{"key": 7, "rollout_percentage": 100}])},
        validation_error(flag_messages.VARIANT_KEY_MISSING.format(index=0), "filters"),
    ),
    (
        {"key": "k", "filters": multivariate([{"key": "control", "name": 5, "rollout_percentage": 100}])},
        validation_error(flag_messages.VARIANT_NAME_INVALID.format(index=0), "filters"),
    ),
    (
        {
            "key": "k",
            "filters": multivariate([{"key": "control", "rollout_percentage": "50"}, CONTROL_TEST[1]]),
        },
        validation_error(flag_messages.VARIANT_ROLLOUT_INVALID.format(index=0), "filters"),
    ),
    (
        {"key": "k", "filters": multivariate([{"key": "control", "rollout_percentage": 150}])},
        validation_error(flag_messages.VARIANT_ROLLOUT_INVALID.format(index=0), "filters"),
    ),
    (
        {"key": "k", "filters": multivariate([{"key": "control"}])},
        validation_error(flag_messages.VARIANT_ROLLOUT_INVALID.format(index=0), "filters"),
    ),
    (
        {
            "key": "k",
            "filters": multivariate(
                [{"key": "control", "rollout_percentage": 50}, {"key": "test", "rollout_percentage": 40}]
            ),
        },
        validation_error(flag_messages.VARIANT_SUM_NOT_100, "filters"),
    ),
    (
        {
            "key": "k",
            "filters": multivariate(
                [{"key": "control", "rollout_percentage": 50}, {"key": "control", "rollout_percentage": 50}]
            ),
        },
        validation_error(flag_messages.DUPLICATE_VARIANT_KEY.format(key="control"), "filters"),
    ),
    (
        {"key": "k", "filters": multivariate(TWENTY_ONE_VARIANTS)},
        validation_error(flag_messages.MULTIVARIATE_TOO_MANY_VARIANTS.format(limit=validators.MAX_VARIANTS), "filters"),
    ),
    # filters: payloads, aggregation, holdout groups
    (
        {"key": "k", "filters": {**multivariate(CONTROL_TEST), "payloads": ["a"]}},
        validation_error(flag_messages.PAYLOADS_NOT_OBJECT, "filters"),
    ),
    (
        {"key": "k", "filters": {**multivariate(CONTROL_TEST), "payloads": {"other": "1"}}},
        validation_error(flag_messages.PAYLOAD_KEY_NOT_A_VARIANT.format(key="other"), "filters"),
    ),
    (
        {"key": "k", "filters": {"groups": VALID_GROUPS, "payloads": {"false": "1"}}},
        validation_error(flag_messages.BOOLEAN_FLAG_PAYLOAD_KEY.format(key="false"), "filters"),
    ),
    (
        {"key": "k", "filters": {"aggregation_group_type_index": "0"}},
        validation_error(
            flag_messages.AGGREGATION_INDEX_INVALID.format(maximum=validators.MAX_GROUP_TYPE_INDEX), "filters"
        ),
    ),
    (
        {"key": "k", "filters": {"aggregation_group_type_index": 5}},
        validation_error(
            flag_messages.AGGREGATION_INDEX_INVALID.format(maximum=validators.MAX_GROUP_TYPE_INDEX), "filters"
        ),
    ),
    (
        {"key": "k", "filters": {"holdout_groups": {"rollout_percentage": 10}}},
        validation_error(flag_messages.HOLDOUT_GROUPS_NOT_LIST, "filters"),
    ),
    (
        {"key": "k", "filters": {"holdout_groups": [{"rollout_percentage": 10}]}},
        validation_error(flag_messages.HOLDOUT_GROUP_INVALID.format(index=0), "filters"),
    ),
]


@pytest.mark.parametrize(("payload", "expected"), BAD_CREATE_INPUTS)
def test_bad_input_on_create_is_a_400_and_writes_nothing(api_client, project, payload, expected):
    response = api_client.post(flags_url(project), payload, format="json")

    assert response.status_code == 400
    assert response.json() == expected
    assert FeatureFlag.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"key": "has space"}, validation_error(flag_messages.INVALID_FLAG_KEY, "key", code="invalid_key")),
        ({"filters": {"groups": [{"rollout_percentage": 150}]}}, None),
        ({"filters": multivariate([{"key": "control"}])}, None),
        ({"active": "perhaps"}, validation_error("Must be a valid boolean.", "active")),
        ({"name": "n" * 4001}, None),
    ],
)
def test_bad_input_on_patch_is_a_400_and_changes_nothing(api_client, project, payload, expected):
    flag = FeatureFlagFactory(project=project, key="stable")
    before = FeatureFlag.objects.values().get(pk=flag.pk)

    response = api_client.patch(flag_url(project, flag), payload, format="json")

    assert response.status_code == 400
    assert response.json()["attr"] == next(iter(payload))
    if expected is not None:
        assert response.json() == expected
    assert FeatureFlag.objects.values().get(pk=flag.pk) == before


@pytest.mark.parametrize("properties", [["x"], [{"key": ["a"]}], [{"value": 1}], "nope"])
def test_release_condition_properties_must_be_filters_with_a_key(api_client, project, properties):
    response = api_client.post(
        f"/api/projects/{project.id}/feature_flags/",
        {"key": "bad-props", "filters": {"groups": [{"properties": properties, "rollout_percentage": 50}]}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == validation_error(flag_messages.GROUP_PROPERTIES_NOT_LIST.format(index=0), "filters")
    assert FeatureFlag.objects.count() == 0


@pytest.mark.parametrize("holdout", [{"id": 1, "exclusion_percentage": "abc"}, {"exclusion_percentage": 10}, "h"])
def test_a_single_holdout_needs_an_id_and_a_percentage(api_client, project, holdout):
    response = api_client.post(
        f"/api/projects/{project.id}/feature_flags/",
        {"key": "bad-holdout", "filters": {"groups": [{"rollout_percentage": 50}], "holdout": holdout}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == validation_error(flag_messages.HOLDOUT_INVALID, "filters")


def test_patch_applies_changes_and_increments_version(api_client, project, user):
    flag = FeatureFlagFactory(project=project, key="old-key", active=False)

    response = api_client.patch(flag_url(project, flag), {"key": "new-key", "active": True}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["key"] == "new-key"
    assert response.json()["version"] == 2
    assert response.json()["last_modified_by"]["id"] == user.pk
    flag.refresh_from_db()
    assert (flag.key, flag.active, flag.version, flag.last_modified_by) == ("new-key", True, 2, user)


def test_patch_to_a_key_another_live_flag_has_is_refused(api_client, project):
    FeatureFlagFactory(project=project, key="taken")
    flag = FeatureFlagFactory(project=project, key="mine")

    response = api_client.patch(flag_url(project, flag), {"key": "taken"}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error(flag_messages.DUPLICATE_FLAG_KEY, "key", code="unique")
    flag.refresh_from_db()
    assert flag.key == "mine"


def test_patch_keeping_its_own_key_is_fine(api_client, project):
    flag = FeatureFlagFactory(project=project, key="mine")

    response = api_client.patch(flag_url(project, flag), {"key": "mine", "name": "Renamed"}, format="json")

    assert response.status_code == 200, response.json()


def test_put_needs_the_key(api_client, project):
    flag = FeatureFlagFactory(project=project, key="mine")

    response = api_client.put(flag_url(project, flag), {"name": "Renamed"}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error("This field is required.", "key", code="required")


def test_put_replaces_the_flag(api_client, project):
    flag = FeatureFlagFactory(project=project, key="mine")

    response = api_client.put(
        flag_url(project, flag), {"key": "mine", "name": "Replaced", "filters": {"groups": []}}, format="json"
    )

    assert response.status_code == 200, response.json()
    flag.refresh_from_db()
    assert (flag.name, flag.filters, flag.version) == ("Replaced", {"groups": []}, 2)


def test_soft_delete_hides_the_flag_from_the_list_but_not_from_retrieve(api_client, project):
    flag = FeatureFlagFactory(project=project)

    response = api_client.patch(flag_url(project, flag), {"deleted": True}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["deleted"] is True
    assert api_client.get(flags_url(project)).json()["count"] == 0
    assert api_client.get(flag_url(project, flag)).json()["deleted"] is True


def test_deleting_a_flag_of_a_running_experiment_is_refused_naming_it(api_client, project):
    flag = FeatureFlagFactory(project=project)
    experiment = ExperimentFactory(project=project, feature_flag=flag, name="Checkout test", start_date=timezone.now())

    response = api_client.patch(flag_url(project, flag), {"deleted": True}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error(
        flag_messages.FLAG_USED_BY_RUNNING_EXPERIMENT.format(name="Checkout test", id=experiment.pk), "deleted"
    )
    flag.refresh_from_db()
    assert (flag.deleted, flag.version) == (False, 1)


@pytest.mark.parametrize(
    "experiment_state",
    [
        {"start_date": None},
        {"start_date": timezone.now(), "end_date": timezone.now()},
        {"start_date": timezone.now(), "deleted": True},
    ],
    ids=["draft", "stopped", "deleted"],
)
def test_a_flag_whose_experiments_are_not_running_can_be_deleted(api_client, project, experiment_state):
    flag = FeatureFlagFactory(project=project)
    ExperimentFactory(project=project, feature_flag=flag, **experiment_state)

    response = api_client.patch(flag_url(project, flag), {"deleted": True}, format="json")

    assert response.status_code == 200, response.json()


def test_restoring_a_flag_whose_key_was_taken_meanwhile_is_refused(api_client, project):
    deleted = FeatureFlagFactory(project=project, key="reused", deleted=True)
    FeatureFlagFactory(project=project, key="reused")

    response = api_client.patch(flag_url(project, deleted), {"deleted": False}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error(flag_messages.DUPLICATE_FLAG_KEY, "key", code="unique")
    deleted.refresh_from_db()
    assert deleted.deleted is True


def test_delete_answers_405_with_an_empty_body_and_keeps_the_flag(api_client, project):
    flag = FeatureFlagFactory(project=project)

    response = api_client.delete(flag_url(project, flag))

    assert response.status_code == 405
    assert response.content == b""
    assert FeatureFlag.objects.filter(pk=flag.pk, deleted=False).exists()


def test_delete_checks_the_write_scope_before_answering_405(make_client, project, user):
    flag = FeatureFlagFactory(project=project)

    response = make_client(user, scopes=["feature_flag:read"]).delete(flag_url(project, flag))

    assert response.status_code == 403
    assert response.json() == missing_scope("feature_flag:write")


def test_delete_without_credentials_is_a_401(client, project):
    flag = FeatureFlagFactory(project=project)

    response = client.delete(flag_url(project, flag))

    assert response.status_code == 401


def test_experiment_set_lists_live_experiments_only(api_client, project):
    flag = FeatureFlagFactory(project=project)
    first = ExperimentFactory(project=project, feature_flag=flag)
    second = ExperimentFactory(project=project, feature_flag=flag)
    ExperimentFactory(project=project, feature_flag=flag, deleted=True)

    response = api_client.get(flag_url(project, flag))

    assert response.status_code == 200
    assert response.json()["experiment_set"] == [first.pk, second.pk]


def test_list_is_paginated_newest_first_and_hides_deleted_flags(api_client, project):
    older = FeatureFlagFactory(project=project)
    newer = FeatureFlagFactory(project=project)
    FeatureFlagFactory(project=project, deleted=True)

    response = api_client.get(flags_url(project), {"limit": 1})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [flag["id"] for flag in body["results"]] == [newer.pk]
    assert body["next"] is not None
    assert [flag["id"] for flag in api_client.get(flags_url(project), {"offset": 1}).json()["results"]] == [older.pk]


def test_the_list_costs_the_same_queries_for_one_flag_or_many(api_client, project, django_assert_num_queries):
    ExperimentFactory(project=project)
    api_client.get(flags_url(project))  # the key's last_used_at is written once, on first use
    # key, project with the membership, page (with both users joined; a short page gives the count), experiments
    with django_assert_num_queries(4):
        first = api_client.get(flags_url(project))
    for _ in range(5):
        flag = FeatureFlagFactory(project=project, created_by=UserFactory(), last_modified_by=UserFactory())
        ExperimentFactory(project=project, feature_flag=flag)
        ExperimentFactory(project=project, feature_flag=flag)
    with django_assert_num_queries(4):
        many = api_client.get(flags_url(project))

    assert first.json()["count"] == 1
    assert many.json()["count"] == 6
    assert all(len(flag["experiment_set"]) == 2 for flag in many.json()["results"][:5])


@pytest.fixture
def listed_flags(project, user):
    """Flags covering every list filter."""
    boolean = FeatureFlagFactory(project=project, key="bool-banner", name="Banner", filters={"groups": VALID_GROUPS})
    multivariant = FeatureFlagFactory(
        project=project, key="pricing", name="Pricing page", active=False, evaluation_runtime="server"
    )
    experiment_flag = FeatureFlagFactory(project=project, key="exp-flag", name="Checkout", created_by=user)
    ExperimentFactory(project=project, feature_flag=experiment_flag)
    only_deleted_experiment = FeatureFlagFactory(project=project, key="old-exp", name="Old")
    ExperimentFactory(project=project, feature_flag=only_deleted_experiment, deleted=True)
    return {
        "boolean": boolean,
        "multivariant": multivariant,
        "experiment": experiment_flag,
        "old": only_deleted_experiment,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"search": "PRIC"}, ["multivariant"]),
        ({"search": "banner"}, ["boolean"]),
        ({"active": "false"}, ["multivariant"]),
        ({"active": "true"}, ["boolean", "experiment", "old"]),
        ({"evaluation_runtime": "server"}, ["multivariant"]),
        ({"type": "boolean"}, ["boolean"]),
        ({"type": "multivariant"}, ["multivariant", "experiment", "old"]),
        ({"type": "experiment"}, ["experiment"]),
    ],
)
def test_list_filters(api_client, project, listed_flags, params, expected):
    response = api_client.get(flags_url(project), params)

    assert response.status_code == 200, response.json()
    ids = {flag["id"] for flag in response.json()["results"]}
    assert ids == {listed_flags[name].pk for name in expected}


def test_list_filters_by_creator(api_client, project, user, listed_flags):
    response = api_client.get(flags_url(project), {"created_by_id": user.pk})

    assert [flag["id"] for flag in response.json()["results"]] == [listed_flags["experiment"].pk]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"created_by_id": "me"}, validation_error("Enter a number.", "created_by_id")),
        (
            {"type": "fancy"},
            validation_error(
                "Select a valid choice. fancy is not one of the available choices.", "type", code="invalid_choice"
            ),
        ),
        (
            {"evaluation_runtime": "edge"},
            validation_error(
                "Select a valid choice. edge is not one of the available choices.",
                "evaluation_runtime",
                code="invalid_choice",
            ),
        ),
    ],
)
def test_bad_list_filters_are_a_400(api_client, project, params, expected):
    response = api_client.get(flags_url(project), params)

    assert response.status_code == 400
    assert response.json() == expected


@pytest.mark.parametrize(
    ("scopes", "method", "allowed"),
    [
        (["feature_flag:read"], "get", True),
        (["feature_flag:read"], "post", False),
        (["feature_flag:read"], "patch", False),
        (["feature_flag:write"], "get", True),
        (["feature_flag:write"], "post", True),
        (["feature_flag:write"], "patch", True),
        (["experiment:write"], "get", False),
        (["cohort:write"], "post", False),
    ],
)
def test_scopes(make_client, project, user, scopes, method, allowed):
    flag = FeatureFlagFactory(project=project)
    client = make_client(user, scopes=scopes)
    calls = {
        "get": lambda: client.get(flag_url(project, flag)),
        "post": lambda: client.post(flags_url(project), {"key": "scoped"}, format="json"),
        "patch": lambda: client.patch(flag_url(project, flag), {"name": "scoped"}, format="json"),
    }

    response = calls[method]()

    if allowed:
        assert response.status_code in (200, 201), response.json()
    else:
        needed = "feature_flag:read" if method == "get" else "feature_flag:write"
        assert response.status_code == 403
        assert response.json() == missing_scope(needed)
        assert FeatureFlag.objects.count() == 1
        flag.refresh_from_db()
        assert flag.version == 1


@pytest.fixture
def outsider(db, make_client):
    """A client for a member of another organization's project."""
    return make_client(member_of(ProjectFactory()))


def test_a_member_of_another_project_is_refused_and_sees_nothing(outsider, project):
    flag = FeatureFlagFactory(project=project, key="secret", name="Secret")

    responses = [
        outsider.get(flags_url(project)),
        outsider.get(flag_url(project, flag)),
        outsider.post(flags_url(project), {"key": "intruder"}, format="json"),
        outsider.patch(flag_url(project, flag), {"name": "pwned"}, format="json"),
        outsider.delete(flag_url(project, flag)),
    ]

    assert [response.status_code for response in responses] == [403] * 5
    assert all(response.json() == NOT_A_MEMBER for response in responses)
    flag.refresh_from_db()
    assert (flag.name, flag.version, FeatureFlag.objects.count()) == ("Secret", 1, 1)
    assert all("Secret" not in response.content.decode() for response in responses)


def test_a_flag_is_not_reachable_through_another_project(api_client, project, user):
    other_project = ProjectFactory()
    member_of(other_project, user)
    foreign = FeatureFlagFactory(project=other_project)

    assert api_client.get(flag_url(project, foreign)).status_code == 404
    assert api_client.patch(flag_url(project, foreign), {"name": "x"}, format="json").status_code == 404
    assert api_client.get(flags_url(project)).json()["count"] == 0


def test_the_service_raises_the_flag_field_error(project, user):
    FeatureFlagFactory(project=project, key="taken")

    with pytest.raises(DomainError) as error:
        feature_flag_create(project=project, user=user, fields={"key": "taken"})

    assert (error.value.message, error.value.code, error.value.attr) == (
        flag_messages.DUPLICATE_FLAG_KEY,
        "unique",
        "key",
    )


def test_the_update_service_locks_and_increments_version(project, user):
    flag = FeatureFlagFactory(project=project)

    updated = feature_flag_update(flag=flag, user=user, changes={"active": False})
    updated = feature_flag_update(flag=updated, user=user, changes={"active": True})

    assert updated.version == 3
    assert FeatureFlag.objects.get(pk=flag.pk).version == 3


def _in_thread(target) -> threading.Thread:
    def run():
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_the_same_key_create_one_flag(make_client):
    project = ProjectFactory()
    clients = [make_client(member_of(project)) for _ in range(4)]
    barrier = threading.Barrier(len(clients))
    statuses: list[tuple[int, dict]] = []

    def create(client):
        barrier.wait()
        response = client.post(flags_url(project), {"key": "race"}, format="json")
        statuses.append((response.status_code, response.json()))

    threads = [_in_thread(lambda client=client: create(client)) for client in clients]
    for thread in threads:
        thread.join()

    assert sorted(status for status, _ in statuses) == [201, 400, 400, 400]
    refusals = [body for status, body in statuses if status == 400]
    assert all(body == validation_error(flag_messages.DUPLICATE_FLAG_KEY, "key", code="unique") for body in refusals)
    assert FeatureFlag.objects.filter(project=project, key="race").count() == 1


def _wait_for_a_backend_blocked_on_a_lock() -> None:
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] > 0:
                return
            time.sleep(0.02)
    raise AssertionError("No database session ever waited on a lock.")


@pytest.mark.django_db(transaction=True)
def test_a_key_taken_between_validation_and_insert_gives_the_unique_error():
    """Another transaction inserts the key but has not committed when we validate; our insert then waits
    for it on the unique index and fails, which must come out as the same `unique` error on `key`."""
    project = ProjectFactory()
    user = UserFactory()
    inserted, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def competitor():
        with transaction.atomic():
            FeatureFlag.objects.create(project=project, key="contested")
            inserted.set()
            release.wait(timeout=10)

    def ours():
        try:
            feature_flag_create(project=project, user=user, fields={"key": "contested"})
        except DomainError as error:
            outcome["detail"] = (error.message, error.code, error.attr)

    competitor_thread = _in_thread(competitor)
    assert inserted.wait(timeout=10)
    our_thread = _in_thread(ours)
    _wait_for_a_backend_blocked_on_a_lock()  # ours validated (the row is invisible) and waits on the index
    release.set()
    competitor_thread.join()
    our_thread.join()

    assert outcome["detail"] == (flag_messages.DUPLICATE_FLAG_KEY, "unique", "key")
    assert FeatureFlag.objects.filter(project=project, key="contested").count() == 1
