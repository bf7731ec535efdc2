"""Flag evaluation: PostHog's bucketing hash, release conditions, holdouts, and the /flags, /decide and
local-evaluation endpoints SDKs call."""

import json

import pytest
from posthog.feature_flags import _hash as posthog_sdk_hash

from events import messages as event_messages
from experiments_api import messages as api_messages
from flags.evaluation import (
    FlagMatch,
    MatchReason,
    bucket_hash,
    flag_evaluate,
    flag_for_local_evaluation,
    holdout_hash,
    property_filter_matches,
    variant_for,
)
from tests.factories import FeatureFlagFactory, ProjectFactory

# Hand-computed: the first 15 hex digits of SHA-1 over the string, divided by 0xFFFFFFFFFFFFFFF, e.g.
#   printf 'checkout.alice' | sha1sum  →  7513298fd6d2483…  →  0x7513298fd6d2483 / 0xFFFFFFFFFFFFFFF
HAND_COMPUTED_HASHES = [
    ("checkout", "alice", "", 0.45732364427278427),
    ("checkout", "alice", "variant", 0.5026633346208694),
    ("checkout", "bob", "", 0.15686114784118715),
    ("checkout", "bob", "variant", 0.9162677192952718),
    ("checkout", "carol", "", 0.7136623971280339),
    ("checkout", "dave", "variant", 0.5203941210273191),
    ("beta-feature", "user-1", "", 0.7264912549260886),
    ("beta-feature", "user-1", "variant", 0.14578218334266493),
]
HAND_COMPUTED_HOLDOUT_HASHES = [
    ("user-1", 0.17805599206573022),
    ("user-7", 0.09801422549212035),
    ("user-12", 0.06396690286273199),
]


def checkout_flag(**filters) -> dict:
    """50% rollout, control 60% / test 40%: alice → control, bob → test, carol out of rollout, dave → control."""
    return {
        "id": 1,
        "key": "checkout",
        "name": "Checkout",
        "version": 1,
        "filters": {
            "groups": [{"properties": [], "rollout_percentage": 50}],
            "multivariate": {
                "variants": [
                    {"key": "control", "rollout_percentage": 60},
                    {"key": "test", "rollout_percentage": 40},
                ]
            },
            **filters,
        },
    }


@pytest.mark.parametrize(("key", "distinct_id", "salt", "expected"), HAND_COMPUTED_HASHES)
def test_bucket_hash_matches_hand_computed_values(key, distinct_id, salt, expected):
    assert bucket_hash(key, distinct_id, salt=salt) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(("distinct_id", "expected"), HAND_COMPUTED_HOLDOUT_HASHES)
def test_holdout_hash_matches_hand_computed_values(distinct_id, expected):
    assert holdout_hash(distinct_id) == pytest.approx(expected, abs=1e-15)


def test_bucket_hash_agrees_with_posthogs_sdk_for_many_ids():
    for number in range(200):
        distinct_id = f"person-{number}"
        assert bucket_hash("exp-flag", distinct_id) == posthog_sdk_hash("exp-flag", distinct_id)
        assert bucket_hash("exp-flag", distinct_id, salt="variant") == posthog_sdk_hash(
            "exp-flag", distinct_id, salt="variant"
        )


@pytest.mark.parametrize(
    ("distinct_id", "expected"),
    [
        ("alice", FlagMatch(enabled=True, variant="control", reason=MatchReason.CONDITION_MATCH, condition_index=0)),
        ("bob", FlagMatch(enabled=True, variant="test", reason=MatchReason.CONDITION_MATCH, condition_index=0)),
        ("carol", FlagMatch(enabled=False, variant=None, reason=MatchReason.OUT_OF_ROLLOUT_BOUND, condition_index=0)),
        ("dave", FlagMatch(enabled=True, variant="control", reason=MatchReason.CONDITION_MATCH, condition_index=0)),
    ],
)
def test_rollout_and_variant_follow_the_hand_computed_hashes(distinct_id, expected):
    assert flag_evaluate(checkout_flag(), distinct_id=distinct_id, person_properties={}) == expected


def test_variant_ranges_are_half_open_and_cumulative():
    variants = [{"key": "a", "rollout_percentage": 25}, {"key": "b", "rollout_percentage": 75}]
    assert variant_for(variants, 0.0) == "a"
    assert variant_for(variants, 0.2499) == "a"
    assert variant_for(variants, 0.25) == "b"
    assert variant_for(variants, 0.9999) == "b"
    assert variant_for([{"key": "a", "rollout_percentage": 50}], 0.75) is None


def test_boolean_flag_returns_true_and_its_payload():
    flag = {
        "id": 2,
        "key": "beta-feature",
        "filters": {"groups": [{"rollout_percentage": 80}], "payloads": {"true": '{"a": 1}'}},
    }

    match = flag_evaluate(flag, distinct_id="user-1", person_properties={})

    assert match == FlagMatch(
        enabled=True, variant=None, reason=MatchReason.CONDITION_MATCH, condition_index=0, payload='{"a": 1}'
    )
    assert match.value is True


def test_no_condition_means_disabled():
    flag = {"id": 3, "key": "empty", "filters": {"groups": []}}
    assert flag_evaluate(flag, distinct_id="alice", person_properties={}) == FlagMatch(
        enabled=False, variant=None, reason=MatchReason.NO_CONDITION_MATCH
    )


@pytest.mark.parametrize(
    ("key", "operator", "value", "properties", "expected"),
    [
        ("plan", "exact", "Pro", {"plan": "pro"}, True),
        ("plan", "exact", ["free", "pro"], {"plan": "pro"}, True),
        ("plan", "exact", "pro", {"plan": "free"}, False),
        ("plan", "exact", "pro", {}, False),
        ("seats", "exact", 5, {"seats": 5}, True),
        ("beta", "exact", "true", {"beta": True}, True),
        ("plan", "is_not", "pro", {"plan": "free"}, True),
        ("plan", "is_not", ["free", "pro"], {"plan": "pro"}, False),
        ("plan", "is_not", "pro", {}, False),
        ("email", "icontains", "EXAMPLE.com", {"email": "ada@example.com"}, True),
        ("email", "icontains", "example.org", {"email": "ada@example.com"}, False),
        ("email", "not_icontains", "example.org", {"email": "ada@example.com"}, True),
        ("email", "not_icontains", "example", {"email": "ada@example.com"}, False),
        ("email", "not_icontains", "example", {}, False),
        ("email", "regex", r"^ada@.*\.com$", {"email": "ada@example.com"}, True),
        ("email", "regex", r"^bob@", {"email": "ada@example.com"}, False),
        ("email", "regex", "(unclosed", {"email": "ada@example.com"}, False),
        ("email", "is_set", None, {"email": "ada@example.com"}, True),
        ("email", "is_set", None, {}, False),
        ("email", "is_not_set", None, {}, True),
        ("email", "is_not_set", None, {"email": "ada@example.com"}, False),
        ("age", "gt", 10, {"age": 11}, True),
        ("age", "gt", 10, {"age": 10}, False),
        ("age", "gt", "10", {"age": "11.5"}, True),
        ("age", "gt", 10, {"age": "eleven"}, False),
        ("age", "gt", 10, {}, False),
        ("age", "gte", 10, {"age": 10}, True),
        ("age", "lt", 10, {"age": 9}, True),
        ("age", "lt", 10, {"age": 10}, False),
        ("age", "lte", 10, {"age": 10}, True),
        ("age", "lte", 10, {"age": True}, False),
        ("email", "no_such_operator", "x", {"email": "x"}, False),
    ],
)
def test_person_property_operators(key, operator, value, properties, expected):
    prop = {"key": key, "operator": operator, "value": value, "type": "person"}
    assert property_filter_matches(prop, properties) is expected


def test_filters_on_other_than_person_properties_never_match():
    assert property_filter_matches({"key": "id", "value": 3, "type": "cohort"}, {"id": 3}) is False


def test_property_filters_gate_the_condition():
    flag = checkout_flag(
        groups=[{"properties": [{"key": "plan", "value": "pro", "type": "person"}], "rollout_percentage": 100}]
    )

    assert flag_evaluate(flag, distinct_id="alice", person_properties={"plan": "pro"}).enabled is True
    assert flag_evaluate(flag, distinct_id="alice", person_properties={"plan": "free"}) == FlagMatch(
        enabled=False, variant=None, reason=MatchReason.NO_CONDITION_MATCH
    )


def test_conditions_with_a_variant_override_are_evaluated_first():
    flag = checkout_flag(
        groups=[
            {"properties": [], "rollout_percentage": 100},
            {
                "properties": [{"key": "email", "value": "ada@example.com"}],
                "rollout_percentage": 100,
                "variant": "test",
            },
        ]
    )

    ada = flag_evaluate(flag, distinct_id="alice", person_properties={"email": "ada@example.com"})
    someone_else = flag_evaluate(flag, distinct_id="alice", person_properties={"email": "bob@example.com"})

    assert (ada.variant, ada.condition_index) == ("test", 1)
    assert (someone_else.variant, someone_else.condition_index) == ("control", 0)


def test_holdout_group_takes_users_in_its_rollout_before_any_condition():
    flag = checkout_flag(holdout_groups=[{"properties": [], "rollout_percentage": 10, "variant": "holdout-7"}])

    held_out = flag_evaluate(flag, distinct_id="user-7", person_properties={})
    not_held_out = flag_evaluate(flag, distinct_id="user-1", person_properties={})

    assert held_out == FlagMatch(
        enabled=True, variant="holdout-7", reason=MatchReason.HOLDOUT_CONDITION_VALUE, condition_index=0
    )
    # user-1: holdout hash 0.178 > 10%; checkout hash 0.448 ≤ 50%, variant hash 0.574 < 60% → control.
    assert not_held_out == FlagMatch(
        enabled=True, variant="control", reason=MatchReason.CONDITION_MATCH, condition_index=0
    )
    assert flag_evaluate(flag, distinct_id="user-12", person_properties={}).variant == "holdout-7"


def test_group_flags_are_disabled_without_group_types():
    flag = checkout_flag(aggregation_group_type_index=0)
    assert flag_evaluate(flag, distinct_id="alice", person_properties={}) == FlagMatch(
        enabled=False, variant=None, reason=MatchReason.NO_GROUP_TYPE
    )


def test_local_evaluation_definition_rewrites_holdout_and_orders_conditions():
    flag = checkout_flag(
        groups=[{"properties": [], "rollout_percentage": 50}, {"properties": [], "variant": "test"}],
        holdout_groups=[{"properties": [], "rollout_percentage": 10, "variant": "holdout-7"}],
    )

    definition = flag_for_local_evaluation(flag)

    assert definition["filters"]["holdout"] == {"id": 7, "exclusion_percentage": 10}
    assert "holdout_groups" not in definition["filters"]
    assert definition["filters"]["groups"] == [
        {"properties": [], "variant": "test"},
        {"properties": [], "rollout_percentage": 50},
    ]


def test_local_evaluation_leaves_out_holdouts_sdks_cannot_express():
    flag = checkout_flag(
        holdout_groups=[
            {"properties": [{"key": "plan", "value": "pro"}], "rollout_percentage": 10, "variant": "holdout-7"}
        ]
    )
    assert flag_for_local_evaluation(flag) is None


# --- the endpoints ---------------------------------------------------------------------------------------------


@pytest.fixture
def checkout(project):
    return FeatureFlagFactory(project=project, key="checkout", name="Checkout", filters=checkout_flag()["filters"])


def _post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


@pytest.mark.django_db
def test_flags_v2_answers_in_posthogs_shape(client, project, checkout):
    response = _post(client, "/flags/?v=2", {"token": project.api_token, "distinct_id": "alice"})

    assert response.status_code == 200
    body = response.json()
    assert body.pop("requestId")
    assert body == {
        "featureFlags": {"checkout": "control"},
        "featureFlagPayloads": {},
        "errorsWhileComputingFlags": False,
        "flags": {
            "checkout": {
                "key": "checkout",
                "enabled": True,
                "variant": "control",
                "reason": {"code": "condition_match", "condition_index": 0, "description": "Matched condition set 1"},
                "metadata": {
                    "id": checkout.id,
                    "version": checkout.version,
                    "description": "Checkout",
                    "payload": None,
                },
            }
        },
    }


@pytest.mark.django_db
def test_decide_v3_answers_values_and_payloads_only(client, project, checkout):
    FeatureFlagFactory(
        project=project, key="banner", filters={"groups": [{"rollout_percentage": 100}], "payloads": {"true": '"hi"'}}
    )

    response = _post(client, "/decide/?v=3", {"api_key": project.api_token, "distinct_id": "carol"})

    assert response.status_code == 200
    body = response.json()
    assert body["featureFlags"] == {"checkout": False, "banner": True}
    assert body["featureFlagPayloads"] == {"banner": '"hi"'}
    assert "flags" not in body


@pytest.mark.django_db
def test_inactive_and_deleted_flags_are_not_evaluated(client, project, checkout):
    FeatureFlagFactory(project=project, key="off", active=False)
    FeatureFlagFactory(project=project, key="gone", deleted=True)

    response = _post(client, "/flags/?v=2", {"token": project.api_token, "distinct_id": "alice"})

    assert set(response.json()["featureFlags"]) == {"checkout"}


@pytest.mark.django_db
def test_person_properties_and_flag_keys_to_evaluate(client, project, checkout):
    FeatureFlagFactory(
        project=project,
        key="pro-only",
        filters={
            "groups": [{"properties": [{"key": "plan", "value": "pro", "type": "person"}], "rollout_percentage": 100}]
        },
    )
    body = {"token": project.api_token, "distinct_id": "alice", "person_properties": {"plan": "pro"}}

    everything = _post(client, "/flags/?v=2", body).json()["featureFlags"]
    only_one = _post(client, "/flags/?v=2", {**body, "flag_keys_to_evaluate": ["pro-only"]}).json()["featureFlags"]

    assert everything == {"checkout": "control", "pro-only": True}
    assert only_one == {"pro-only": True}


@pytest.mark.django_db
def test_flags_honour_the_holdout(client, project):
    FeatureFlagFactory(
        project=project,
        key="checkout",
        filters=checkout_flag(holdout_groups=[{"properties": [], "rollout_percentage": 10, "variant": "holdout-7"}])[
            "filters"
        ],
    )

    held_out = _post(client, "/flags/?v=2", {"token": project.api_token, "distinct_id": "user-7"}).json()

    assert held_out["featureFlags"] == {"checkout": "holdout-7"}
    assert held_out["flags"]["checkout"]["reason"]["code"] == "holdout_condition_value"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (
            {"token": "phc_unknown", "distinct_id": "alice"},
            401,
            {
                "type": "authentication_error",
                "code": "authentication_failed",
                "detail": event_messages.TOKEN_INVALID,
                "attr": None,
            },
        ),
        (
            {"distinct_id": "alice"},
            401,
            {
                "type": "authentication_error",
                "code": "not_authenticated",
                "detail": event_messages.TOKEN_MISSING,
                "attr": None,
            },
        ),
        (
            {"token": "{token}"},
            400,
            {
                "type": "validation_error",
                "code": "invalid_input",
                "detail": event_messages.DISTINCT_ID_REQUIRED,
                "attr": "distinct_id",
            },
        ),
        (
            {"token": "{token}", "distinct_id": "alice", "person_properties": ["plan"]},
            400,
            {
                "type": "validation_error",
                "code": "invalid_input",
                "detail": event_messages.PERSON_PROPERTIES_NOT_OBJECT,
                "attr": "person_properties",
            },
        ),
        (
            {"token": "{token}", "distinct_id": "alice", "flag_keys_to_evaluate": "checkout"},
            400,
            {
                "type": "validation_error",
                "code": "invalid_input",
                "detail": event_messages.FLAG_KEYS_NOT_LIST,
                "attr": "flag_keys_to_evaluate",
            },
        ),
    ],
)
def test_flags_bad_input(client, project, body, status, expected):
    body = {key: project.api_token if value == "{token}" else value for key, value in body.items()}

    response = _post(client, "/flags/?v=2", body)

    assert response.status_code == status
    assert response.json() == expected


@pytest.mark.django_db
def test_flags_body_that_is_not_an_object_is_a_400(client):
    response = client.post("/flags/?v=2", json.dumps(["alice"]), content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "type": "invalid_request",
        "code": "invalid_input",
        "detail": event_messages.REQUEST_NOT_OBJECT,
        "attr": None,
    }


@pytest.mark.django_db
def test_flags_malformed_json_is_a_400(client):
    response = client.post("/flags/?v=2", b"{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "type": "invalid_request",
        "code": "parse_error",
        "detail": "Malformed request data: the body is not valid JSON.",
        "attr": None,
    }


# --- local evaluation ------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/feature_flag/local_evaluation/", "/flags/definitions"])
def test_local_evaluation_lists_definitions(make_client, user, project, checkout, path):
    FeatureFlagFactory(project=project, key="off", active=False)
    client = make_client(user, scopes=["feature_flag:read"])

    response = client.get(f"{path}?token={project.api_token}&send_cohorts")

    assert response.status_code == 200
    body = response.json()
    assert body["group_type_mapping"] == {} and body["cohorts"] == {}
    assert [(flag["key"], flag["active"]) for flag in body["flags"]] == [("checkout", True), ("off", False)]
    assert body["flags"][0] == {
        "id": checkout.id,
        "team_id": project.id,
        "key": "checkout",
        "name": "Checkout",
        "filters": checkout_flag()["filters"],
        "active": True,
        "deleted": False,
        "version": checkout.version,
        "ensure_experience_continuity": False,
    }


@pytest.mark.django_db
def test_local_evaluation_needs_the_feature_flag_read_scope(make_client, user, project):
    client = make_client(user, scopes=["experiment:read"])

    response = client.get(f"/api/feature_flag/local_evaluation/?token={project.api_token}")

    assert response.status_code == 403
    assert response.json() == {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": api_messages.MISSING_SCOPE.format(scope="feature_flag:read"),
        "attr": None,
    }


@pytest.mark.django_db
def test_local_evaluation_refuses_unknown_tokens_and_other_projects(make_client, user):
    client = make_client(user, scopes=["feature_flag:read"])
    other_project = ProjectFactory()

    unknown = client.get("/api/feature_flag/local_evaluation/?token=phc_unknown")
    foreign = client.get(f"/api/feature_flag/local_evaluation/?token={other_project.api_token}")

    assert unknown.status_code == 401
    assert unknown.json() == {
        "type": "authentication_error",
        "code": "authentication_failed",
        "detail": event_messages.TOKEN_INVALID,
        "attr": None,
    }
    assert foreign.status_code == 403
    assert foreign.json()["detail"] == api_messages.NOT_A_PROJECT_MEMBER


@pytest.mark.django_db
def test_local_evaluation_without_a_key_is_a_401(client, project):
    response = client.get(f"/api/feature_flag/local_evaluation/?token={project.api_token}")

    assert response.status_code == 401


@pytest.mark.django_db
def test_local_evaluation_without_token_uses_the_keys_current_project(make_client, user, project, checkout):
    client = make_client(user, scopes=["feature_flag:read"])

    response = client.get("/api/feature_flag/local_evaluation/")

    assert response.status_code == 200
    assert [flag["key"] for flag in response.json()["flags"]] == ["checkout"]
