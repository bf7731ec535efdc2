"""The persons REST API: list filters, retrieve by pk or uuid, property writes through events, delete, cohort
members, scopes, project isolation and bad input."""

import uuid

import pytest

from events.models import Event
from events.services import events_ingest
from experiments_api.exceptions import error_body
from experiments_api.messages import MISSING_SCOPE
from persons.messages import CREATE_NOT_ALLOWED, NOT_A_PERSON_ID, PERSON_NOT_FOUND, PROPERTIES_NOT_LIST
from persons.models import CohortPerson, Person, PersonOverride
from persons.selectors import person_for_distinct_id
from tests.factories import CohortFactory, ProjectFactory, member_of

pytestmark = pytest.mark.django_db


def ingest(project, *events):
    result = events_ingest(
        project=project,
        events=[{"uuid": str(uuid.uuid4()), "properties": {}, **event} for event in events],
    )
    assert not result.rejected


def url(project, suffix="") -> str:
    return f"/api/projects/{project.pk}/persons/{suffix}"


@pytest.fixture
def people(project):
    ingest(
        project,
        {"event": "$pageview", "distinct_id": "anon-1"},
        {
            "event": "$identify",
            "distinct_id": "alice",
            "properties": {"$anon_distinct_id": "anon-1"},
            "$set": {"email": "alice@example.com", "plan": "pro"},
        },
        {"event": "$pageview", "distinct_id": "bob", "properties": {"$set": {"email": "bob@corp.io", "plan": "free"}}},
        {"event": "$pageview", "distinct_id": "0f1c7e9a-50a8-4a4e-9d4c-1d2b3c4d5e6f"},
    )
    return {name: person_for_distinct_id(project_id=project.pk, distinct_id=name) for name in ("alice", "bob")}


def test_list_newest_first_in_posthogs_shape(api_client, project, people, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = api_client.get(url(project))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "results", "next", "previous"}
    alice = next(item for item in body["results"] if item["uuid"] == str(people["alice"].uuid))
    assert alice == {
        "type": "person",
        "id": str(people["alice"].uuid),
        "uuid": str(people["alice"].uuid),
        "created_at": alice["created_at"],
        "properties": people["alice"].properties,
        "is_identified": True,
        "name": "alice@example.com",
        "distinct_ids": ["alice", "anon-1"],
        "matched_recordings": [],
        "value_at_data_point": None,
        "last_seen_at": None,
    }
    assert len(body["results"]) == body["count"] == 3


def test_a_persons_name_falls_back_to_a_non_uuid_distinct_id(api_client, project):
    ingest(project, {"event": "e", "distinct_id": "0f1c7e9a-50a8-4a4e-9d4c-1d2b3c4d5e6f"})
    ingest(
        project,
        {
            "event": "$create_alias",
            "distinct_id": "0f1c7e9a-50a8-4a4e-9d4c-1d2b3c4d5e6f",
            "properties": {"alias": "carol"},
        },
    )

    (item,) = api_client.get(url(project)).json()["results"]
    assert (item["name"], item["distinct_ids"]) == ("carol", ["carol", "0f1c7e9a-50a8-4a4e-9d4c-1d2b3c4d5e6f"])


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"distinct_id": "anon-1"}, {"alice"}),
        ({"email": "bob@corp.io"}, {"bob"}),
        ({"search": "EXAMPLE.com"}, {"alice"}),
        ({"search": "bob"}, {"bob"}),
        ({"properties": '[{"key": "plan", "value": "pro", "operator": "exact"}]'}, {"alice"}),
        (
            {
                "properties": '[{"key": "plan", "operator": "is_set"}, {"key": "email", "value": "corp", "operator": "icontains"}]'
            },
            {"bob"},
        ),
    ],
)
def test_list_filters(api_client, project, people, params, expected):
    results = api_client.get(url(project), params).json()["results"]

    assert {item["uuid"] for item in results} == {str(people[name].uuid) for name in expected}


def test_search_by_uuid(api_client, project, people):
    results = api_client.get(url(project), {"search": str(people["bob"].uuid)}).json()["results"]
    assert [item["uuid"] for item in results] == [str(people["bob"].uuid)]


@pytest.mark.parametrize("properties", ["not json", '{"key": "a"}', '[{"value": 1}]', '[{"key": "a"}]', "[1]"])
def test_bad_property_filters_are_a_400(api_client, project, properties):
    response = api_client.get(url(project), {"properties": properties})

    assert response.status_code == 400
    assert response.json()["attr"] == "properties"


def test_bad_list_parameters_are_a_400(api_client, project):
    assert api_client.get(url(project), {"cohort": "x"}).json()["attr"] == "cohort"
    assert api_client.get(url(project), {"limit": "0"}).status_code == 400
    assert api_client.get(url(project), {"properties": "nope"}).json() == error_body(
        type="validation_error", code="invalid_input", detail=PROPERTIES_NOT_LIST, attr="properties"
    )


def test_retrieve_by_pk_or_uuid(api_client, project, people):
    alice = people["alice"]
    by_pk = api_client.get(url(project, f"{alice.pk}/")).json()
    by_uuid = api_client.get(url(project, f"{alice.uuid}/")).json()

    assert (
        by_pk
        == by_uuid
        == {
            "id": alice.pk,
            "name": "alice@example.com",
            "distinct_ids": ["alice", "anon-1"],
            "properties": alice.properties,
            "created_at": by_pk["created_at"],
            "uuid": str(alice.uuid),
            "is_identified": True,
        }
    )


def test_retrieve_by_distinct_id_suggests_the_filter(api_client, project, people):
    response = api_client.get(url(project, "alice/"))

    assert response.status_code == 400
    assert response.json() == error_body(type="validation_error", code="invalid_id", detail=NOT_A_PERSON_ID, attr="id")


def test_unknown_person_is_a_404(api_client, project):
    for missing in ("999999", str(uuid.uuid4())):
        response = api_client.get(url(project, f"{missing}/"))
        assert response.status_code == 404
        assert response.json() == error_body(type="invalid_request", code="not_found", detail=PERSON_NOT_FOUND)


def test_creating_persons_is_not_allowed(api_client, project):
    response = api_client.post(url(project), {"properties": {}}, format="json")

    assert response.status_code == 405
    assert response.json() == error_body(type="invalid_request", code="method_not_allowed", detail=CREATE_NOT_ALLOWED)


def test_patch_sets_properties_through_a_set_event(api_client, project, people):
    alice = people["alice"]

    response = api_client.patch(url(project, f"{alice.pk}/"), {"properties": {"plan": "enterprise"}}, format="json")

    assert (response.status_code, response.content) == (202, b"")
    alice.refresh_from_db()
    assert alice.properties["plan"] == "enterprise"
    assert Event.objects.filter(project=project, event="$set", distinct_id="alice").exists()


@pytest.mark.parametrize("body", [{}, {"properties": "x"}, {"properties": [1]}])
def test_patch_without_properties_is_a_400_and_changes_nothing(api_client, project, people, body):
    before = Event.objects.count()

    response = api_client.patch(url(project, f"{people['alice'].pk}/"), body, format="json")

    assert response.status_code == 400
    assert response.json()["attr"] == "properties"
    assert Event.objects.count() == before


def test_update_property_checks_value_before_key(api_client, project, people):
    target = url(project, f"{people['bob'].pk}/update_property/")

    assert api_client.post(target, {}, format="json").json()["attr"] == "value"
    assert api_client.post(target, {"value": 1}, format="json").json()["attr"] == "key"
    response = api_client.post(target, {"key": "seats", "value": 3}, format="json")

    assert response.status_code == 202
    people["bob"].refresh_from_db()
    assert people["bob"].properties["seats"] == 3


def test_delete_property(api_client, project, people):
    target = url(project, f"{people['bob'].pk}/delete_property/")

    assert api_client.post(target, {}, format="json").json()["attr"] == "$unset"
    response = api_client.post(target, {"$unset": "plan"}, format="json")

    assert (response.status_code, response.json()) == (201, {"success": True})
    people["bob"].refresh_from_db()
    assert "plan" not in people["bob"].properties
    assert Event.objects.filter(project=project, event="$delete_person_property").exists()


def test_delete_keeps_events_unless_asked(api_client, project, people):
    alice, bob = people["alice"], people["bob"]
    PersonOverride.objects.create(project=project, old_person_id=uuid.uuid4(), new_person_id=alice.uuid)

    assert api_client.delete(url(project, f"{alice.pk}/")).status_code == 202
    assert person_for_distinct_id(project_id=project.pk, distinct_id="alice") is None
    assert not PersonOverride.objects.filter(project=project).exists()
    assert Event.objects.filter(project=project, distinct_id="alice").exists()

    assert api_client.delete(url(project, f"{bob.uuid}/"), QUERY_STRING="delete_events=true").status_code == 202
    assert not Event.objects.filter(project=project, distinct_id="bob").exists()
    assert api_client.delete(url(project, f"{bob.pk}/")).status_code == 404


def test_scopes(make_client, user, project, people):
    reader = make_client(user, scopes=["person:read"])
    assert reader.get(url(project)).status_code == 200
    response = reader.patch(url(project, f"{people['bob'].pk}/"), {"properties": {"a": 1}}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == MISSING_SCOPE.format(scope="person:write")
    assert make_client(user, scopes=["experiment:read"]).get(url(project)).status_code == 403
    writer = make_client(user, scopes=["person:write"])
    assert (
        writer.post(url(project, f"{people['bob'].pk}/update_property/"), {"key": "k", "value": 1}).status_code == 202
    )


def test_project_isolation(api_client, user, project, people):
    other = ProjectFactory(organization=project.organization)
    member_of(other, user)
    ingest(other, {"event": "e", "distinct_id": "alice"})

    assert (
        api_client.get(
            url(project, f"{person_for_distinct_id(project_id=other.pk, distinct_id='alice').pk}/")
        ).status_code
        == 404
    )
    assert len(api_client.get(url(other)).json()["results"]) == 1
    outsider = ProjectFactory()
    assert api_client.get(url(outsider)).status_code == 403


def test_cohort_members(make_client, user, project, people):
    cohort = CohortFactory(project=project, is_static=True)
    CohortPerson.objects.create(cohort=cohort, person=people["alice"])
    target = f"/api/projects/{project.pk}/cohorts/{cohort.pk}/persons/"

    assert make_client(user, scopes=["cohort:read"]).get(target).status_code == 403
    response = make_client(user, scopes=["cohort:read", "person:read"]).get(target)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "results", "next", "previous"}
    assert [item["uuid"] for item in body["results"]] == [str(people["alice"].uuid)]


def person_rows(project) -> list:
    return sorted(
        (str(person.uuid), person.properties, sorted(person.distinct_ids.values_list("distinct_id", flat=True)))
        for person in Person.objects.filter(project=project)
    )


LONG = "x" * 401
BAD_WRITES = {
    "delete_events not a boolean": ("delete", "{pk}/?delete_events=maybe", None, "delete_events"),
    "properties not an object": ("patch", "{pk}/", {"properties": ["plan"]}, "properties"),
    "update_property key not text": ("post", "{pk}/update_property/", {"value": 1, "key": {"a": 1}}, "key"),
    "update_property key too long": ("post", "{pk}/update_property/", {"value": 1, "key": LONG}, "key"),
    "delete_property $unset not text": ("post", "{pk}/delete_property/", {"$unset": ["plan"]}, "$unset"),
    "delete_property $unset too long": ("post", "{pk}/delete_property/", {"$unset": LONG}, "$unset"),
}


@pytest.mark.parametrize(("method", "path", "body", "attr"), BAD_WRITES.values(), ids=BAD_WRITES.keys())
def test_bad_write_parameters_are_a_400_and_write_nothing(api_client, project, people, method, path, body, attr):
    before, events_before = person_rows(project), Event.objects.count()

    response = getattr(api_client, method)(url(project, path.format(pk=people["bob"].pk)), body, format="json")

    assert (response.status_code, response.json()["type"], response.json()["attr"]) == (400, "validation_error", attr)
    assert person_rows(project) == before
    assert Event.objects.count() == events_before


@pytest.mark.parametrize(("name", "value"), [("distinct_id", LONG), ("email", LONG), ("search", LONG), ("cohort", "0")])
def test_bad_list_filters_are_a_400(api_client, project, name, value):
    response = api_client.get(url(project), {name: value})

    assert (response.status_code, response.json()["attr"]) == (400, name)
