"""Flags evaluated on stored person properties (merged with the sent ones, which win), on cohort membership, and
with experience continuity through `$anon_distinct_id`; end to end through PostHog's Python SDK where it can."""

import json
import uuid

import pytest
from django.test import Client

from events.services import events_ingest
from flags.evaluation import bucket_hash, variant_for
from persons.models import CohortPerson, FeatureFlagHashKeyOverride
from persons.selectors import person_for_distinct_id
from tests.factories import CohortFactory, FeatureFlagFactory, ProjectFactory, api_key_for, member_of
from tests.test_posthog_sdk import _fresh_connection_per_request, sdk_client  # noqa: F401 (fixture)

VARIANTS = [{"key": "control", "rollout_percentage": 50}, {"key": "test", "rollout_percentage": 50}]


def condition_flag(project, key, properties, **extra):
    return FeatureFlagFactory(
        project=project, key=key, filters={"groups": [{"properties": properties, "rollout_percentage": 100}]}, **extra
    )


def ingest(project, *events):
    events_ingest(project=project, events=[{"uuid": str(uuid.uuid4()), "properties": {}, **event} for event in events])


def post_flags(client, project, **body):
    response = client.post(
        "/flags/?v=2", json.dumps({"token": project.api_token, **body}), content_type="application/json"
    )
    return response


PLAN_PRO = [{"key": "plan", "value": "pro", "operator": "exact", "type": "person"}]


@pytest.mark.django_db(transaction=True)
def test_sdk_flags_use_stored_person_properties_and_cohorts(live_server):
    project = ProjectFactory()
    condition_flag(project, "pro-only", PLAN_PRO)
    dynamic = CohortFactory(
        project=project,
        filters={
            "properties": {
                "type": "OR",
                "values": [
                    {"type": "AND", "values": [{"key": "plan", "value": "pro", "operator": "exact", "type": "person"}]}
                ],
            }
        },
    )
    static = CohortFactory(project=project, is_static=True)
    condition_flag(project, "in-dynamic", [{"key": "id", "value": dynamic.pk, "type": "cohort"}])
    condition_flag(project, "in-static", [{"key": "id", "value": static.pk, "type": "cohort"}])
    condition_flag(
        project, "not-in-static", [{"key": "id", "value": static.pk, "type": "cohort", "operator": "not_in"}]
    )
    client = sdk_client(live_server, project)
    try:
        client.set(distinct_id="ada", properties={"plan": "pro"})
        client.capture("$pageview", distinct_id="bob")
        client.flush()
        CohortPerson.objects.create(
            cohort=static, person=person_for_distinct_id(project_id=project.pk, distinct_id="bob")
        )

        ada = {
            key: client.get_feature_flag(key, "ada", send_feature_flag_events=False)
            for key in ("pro-only", "in-dynamic", "in-static", "not-in-static")
        }
        bob = {
            key: client.get_feature_flag(key, "bob", send_feature_flag_events=False)
            for key in ("pro-only", "in-dynamic", "in-static", "not-in-static")
        }
        # Sent properties win over the stored ones for that request.
        ada_sent_free = client.get_feature_flag(
            "pro-only", "ada", person_properties={"plan": "free"}, send_feature_flag_events=False
        )
        stranger = client.get_feature_flag("pro-only", "nobody", send_feature_flag_events=False)
    finally:
        client.shutdown()

    assert ada == {"pro-only": True, "in-dynamic": True, "in-static": False, "not-in-static": True}
    assert bob == {"pro-only": False, "in-dynamic": False, "in-static": True, "not-in-static": False}
    assert (ada_sent_free, stranger) == (False, False)


def _ids_in_different_variants(key: str) -> tuple[str, str]:
    def variant(distinct_id):
        return variant_for(VARIANTS, bucket_hash(key, distinct_id, salt="variant"))

    anonymous = "anon-visitor"
    for number in range(100):
        user = f"user-{number}"
        if variant(user) != variant(anonymous):
            return anonymous, user
    raise AssertionError("no pair found")


@pytest.mark.django_db
def test_experience_continuity_keeps_the_variant_seen_before_login(client):
    project = ProjectFactory()
    key = "continuity"
    FeatureFlagFactory(
        project=project,
        key=key,
        ensure_experience_continuity=True,
        filters={"groups": [{"properties": [], "rollout_percentage": 100}], "multivariate": {"variants": VARIANTS}},
    )
    anonymous, user = _ids_in_different_variants(key)
    before_login = post_flags(client, project, distinct_id=anonymous).json()["featureFlags"][key]
    # Evaluated before any person exists: nothing is written.
    post_flags(client, project, distinct_id=user, **{"$anon_distinct_id": anonymous})
    assert not FeatureFlagHashKeyOverride.objects.exists()

    ingest(project, {"event": "$pageview", "distinct_id": anonymous})
    first = post_flags(client, project, distinct_id=user, **{"$anon_distinct_id": anonymous}).json()
    ingest(project, {"event": "$identify", "distinct_id": user, "properties": {"$anon_distinct_id": anonymous}})
    after_login = post_flags(client, project, distinct_id=user).json()["featureFlags"][key]
    # A later request with another anonymous id does not replace the first override.
    post_flags(client, project, distinct_id=user, anon_distinct_id="another-device")

    assert first["featureFlags"][key] == before_login
    assert after_login == before_login
    assert post_flags(client, project, distinct_id=user).json()["featureFlags"][key] == before_login
    assert set(FeatureFlagHashKeyOverride.objects.values_list("feature_flag_key", "hash_key")) == {(key, anonymous)}


@pytest.mark.django_db
def test_flags_without_continuity_follow_the_new_id(client):
    project = ProjectFactory()
    key = "plain"
    FeatureFlagFactory(
        project=project,
        key=key,
        filters={"groups": [{"properties": [], "rollout_percentage": 100}], "multivariate": {"variants": VARIANTS}},
    )
    anonymous, user = _ids_in_different_variants(key)
    ingest(project, {"event": "$identify", "distinct_id": user, "properties": {"$anon_distinct_id": anonymous}})

    answer = post_flags(client, project, distinct_id=user, **{"$anon_distinct_id": anonymous}).json()

    assert answer["featureFlags"][key] == variant_for(VARIANTS, bucket_hash(key, user, salt="variant"))
    assert not FeatureFlagHashKeyOverride.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("value", [{"a": 1}, ["x"], True])
def test_a_bad_anon_distinct_id_is_a_400(client, value):
    project = ProjectFactory()

    response = post_flags(client, project, distinct_id="u", **{"$anon_distinct_id": value})

    assert response.status_code == 400
    assert response.json()["attr"] == "$anon_distinct_id"


@pytest.mark.django_db
def test_a_deleted_or_missing_cohort_matches_nobody(client):
    project = ProjectFactory()
    deleted = CohortFactory(
        project=project,
        deleted=True,
        filters={"properties": {"type": "AND", "values": [{"key": "plan", "operator": "is_set", "type": "person"}]}},
    )
    condition_flag(project, "deleted", [{"key": "id", "value": deleted.pk, "type": "cohort"}])
    condition_flag(project, "missing", [{"key": "id", "value": 999999, "type": "cohort"}])
    ingest(project, {"event": "$set", "distinct_id": "u", "properties": {"$set": {"plan": "pro"}}})

    flags = post_flags(client, project, distinct_id="u").json()["featureFlags"]

    assert flags == {"deleted": False, "missing": False}


@pytest.mark.django_db
def test_local_evaluation_ships_dynamic_cohorts(client, project):
    user = member_of(project)
    dynamic = CohortFactory(project=project, filters={"properties": {"type": "AND", "values": PLAN_PRO}})
    static = CohortFactory(project=project, is_static=True)
    condition_flag(project, "dyn", [{"key": "id", "value": dynamic.pk, "type": "cohort"}])
    condition_flag(project, "stat", [{"key": "id", "value": static.pk, "type": "cohort"}])

    response = client.get(
        f"/api/feature_flag/local_evaluation/?token={project.api_token}",
        headers={"Authorization": f"Bearer {api_key_for(user, ['feature_flag:read'])}"},
    )

    assert response.status_code == 200
    assert response.json()["cohorts"] == {str(dynamic.pk): {"type": "AND", "values": PLAN_PRO}}


@pytest.mark.django_db
def test_a_flag_cannot_use_a_cohort_with_event_filters(api_client, project):
    behavioural = CohortFactory(
        project=project,
        name="Exposed",
        filters={
            "properties": {
                "type": "OR",
                "values": [
                    {"key": "$pageview", "type": "behavioral", "value": "performed_event", "event_type": "events"}
                ],
            }
        },
    )
    wrapper = CohortFactory(
        project=project,
        filters={"properties": {"type": "AND", "values": [{"key": "id", "value": behavioural.pk, "type": "cohort"}]}},
    )
    by_properties = CohortFactory(project=project, filters={"properties": {"type": "AND", "values": PLAN_PRO}})

    def create(cohort):
        filters = {
            "groups": [{"properties": [{"key": "id", "value": cohort.pk, "type": "cohort"}], "rollout_percentage": 100}]
        }
        return api_client.post(
            f"/api/projects/{project.pk}/feature_flags/", {"key": f"f-{cohort.pk}", "filters": filters}, format="json"
        )

    for cohort in (behavioural, wrapper):
        response = create(cohort)
        assert response.status_code == 400
        assert response.json() == {
            "type": "validation_error",
            "code": "behavioral_cohort_found",
            "detail": f"Cohort '{cohort.name}' with filters on events cannot be used in feature flags.",
            "attr": "filters",
        }
    assert create(by_properties).status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("flag_properties", "extra", "queries", "answer"),
    [
        (PLAN_PRO, {}, 0, True),  # every property the flags read was sent
        ([{"key": "email", "value": "@example.com", "operator": "icontains"}], {}, 1, True),  # the stored `email`
        ([], {"ensure_experience_continuity": True}, 2, True),  # the person and its hash keys
        ([{"key": "id", "value": 0, "type": "cohort"}], {}, 3, False),  # the person, cohorts, static memberships
        ([{"key": "plan", "value": "pro", "type": "event"}], {}, 0, False),  # never matches, whoever asks
    ],
    ids=["all-sent", "stored-property", "continuity", "cohort", "other-type"],
)
def test_the_stored_person_is_read_only_when_it_can_change_the_answer(
    client, project, django_assert_num_queries, flag_properties, extra, queries, answer
):
    condition_flag(project, "flag", flag_properties, **extra)
    ingest(project, {"event": "$set", "distinct_id": "ada", "properties": {"$set": {"email": "ada@example.com"}}})
    post_flags(client, project, distinct_id="ada", person_properties={"plan": "pro"})  # loads the flags

    with django_assert_num_queries(queries):
        response = post_flags(client, project, distinct_id="ada", person_properties={"plan": "pro"})

    assert response.status_code == 200
    assert response.json()["featureFlags"] == {"flag": answer}


@pytest.mark.django_db(transaction=True)
def test_sdk_evaluates_a_cohort_flag_locally_from_the_shipped_cohorts(live_server):
    """With a personal API key the SDK downloads the definitions with the dynamic cohorts they use and decides a
    cohort condition on the person properties it is given, never asking the server (`only_evaluate_locally`); a
    static cohort cannot be decided locally, so the SDK answers nothing for it. The local answers are the
    server's for the same persons once ingested (the server places an unknown person in no cohort)."""
    project = ProjectFactory()
    personal_api_key = api_key_for(member_of(project), ["feature_flag:read"])
    big_teams = CohortFactory(
        project=project,
        filters={
            "properties": {"type": "AND", "values": [{"key": "seats", "value": 10, "operator": "gt", "type": "person"}]}
        },
    )
    customers = CohortFactory(
        project=project,
        filters={
            "properties": {
                "type": "OR",
                "values": [
                    {"type": "AND", "values": PLAN_PRO},
                    {"type": "AND", "values": [{"key": "id", "value": big_teams.pk, "type": "cohort"}]},
                ],
            }
        },
    )
    static = CohortFactory(project=project, is_static=True)
    condition_flag(project, "customers-only", [{"key": "id", "value": customers.pk, "type": "cohort"}])
    condition_flag(project, "static-only", [{"key": "id", "value": static.pk, "type": "cohort"}])
    people = {
        "pro": {"plan": "pro"},
        "big-free": {"plan": "free", "seats": 25},
        "small-free": {"plan": "free", "seats": 2},
    }
    client = sdk_client(live_server, project, secret_key=personal_api_key, poll_interval=300)
    try:
        client.load_feature_flags()
        shipped = set(client.cohorts)
        local, static_local = {}, {}
        for distinct_id, properties in people.items():
            evaluated = client.evaluate_flags(distinct_id, person_properties=properties, only_evaluate_locally=True)
            local[distinct_id] = evaluated.get_flag("customers-only", send_feature_flag_events=False)
            static_local[distinct_id] = evaluated.get_flag("static-only", send_feature_flag_events=False)
    finally:
        client.shutdown()

    assert shipped == {str(customers.pk), str(big_teams.pk)}
    assert local == {"pro": True, "big-free": True, "small-free": False}
    assert static_local == dict.fromkeys(people)
    for distinct_id, properties in people.items():
        ingest(project, {"event": "$set", "distinct_id": distinct_id, "properties": {"$set": properties}})
    remote = {}
    for distinct_id, properties in people.items():
        response = Client().post(
            "/flags/?v=2",
            json.dumps({"token": project.api_token, "distinct_id": distinct_id, "person_properties": properties}),
            content_type="application/json",
        )
        remote[distinct_id] = response.json()["featureFlags"]["customers-only"]
    assert remote == local


@pytest.mark.django_db
def test_decide_uses_stored_person_properties_and_sent_ones_win(client):
    project = ProjectFactory()
    condition_flag(project, "pro-only", PLAN_PRO)
    ingest(project, {"event": "$set", "distinct_id": "ada", "properties": {"$set": {"plan": "pro"}}})

    def decide(**body):
        response = client.post(
            "/decide/?v=3",
            json.dumps({"api_key": project.api_token, **body}),
            content_type="application/json",
        )
        assert response.status_code == 200
        return response.json()["featureFlags"]["pro-only"]

    assert decide(distinct_id="ada") is True
    assert decide(distinct_id="ada", person_properties={"plan": "free"}) is False
    assert decide(distinct_id="bob") is False
