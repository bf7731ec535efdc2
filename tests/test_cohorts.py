"""/api/projects/:project_id/cohorts/: CRUD, validation, soft delete, scopes, tenancy, and the create service."""

import pytest

from flags import messages as flag_messages
from flags.models import Cohort
from flags.services import cohort_create
from tests.factories import CohortFactory, ProjectFactory, member_of
from tests.helpers import NOT_A_MEMBER, missing_scope, validation_error

FILTERS = {"properties": {"type": "OR", "values": [{"type": "AND", "values": []}]}}


def cohorts_url(project) -> str:
    return f"/api/projects/{project.pk}/cohorts/"


def cohort_url(project, cohort) -> str:
    return f"/api/projects/{project.pk}/cohorts/{cohort.pk}/"


def test_create_returns_the_cohort(api_client, project, user):
    response = api_client.post(
        cohorts_url(project),
        {"name": "Exposed users", "description": "Saw the test", "filters": FILTERS, "count": 99},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    cohort = Cohort.objects.get()
    assert body == {
        "id": cohort.pk,
        "name": "Exposed users",
        "description": "Saw the test",
        "filters": FILTERS,
        "is_static": False,
        # Saved, so queued for calculation (which runs once the transaction commits).
        "is_calculating": True,
        "deleted": False,
        "count": None,
        "last_calculation": None,
        "errors_calculating": 0,
        "created_by": body["created_by"],
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["created_by"]["id"] == user.pk
    assert (cohort.project, cohort.created_by, cohort.count) == (project, user, None)


def test_the_create_service_takes_what_the_exposure_cohort_action_sends(project, user):
    cohort = cohort_create(
        project=project,
        user=user,
        fields={"name": "Users exposed to experiment X", "filters": FILTERS, "is_static": False},
    )

    cohort.refresh_from_db()
    assert (cohort.name, cohort.filters, cohort.is_static, cohort.is_calculating) == (
        "Users exposed to experiment X",
        FILTERS,
        False,
        True,
    )
    assert (cohort.project, cohort.created_by) == (project, user)


BAD_INPUTS = [
    ({"filters": FILTERS}, validation_error("This field is required.", "name", code="required")),
    ({"name": None}, validation_error("This field may not be null.", "name", code="null")),
    ({"name": ""}, validation_error("This field may not be blank.", "name", code="blank")),
    ({"name": ["a"]}, validation_error("Not a valid string.", "name")),
    (
        {"name": "n" * 401},
        validation_error("Ensure this field has no more than 400 characters.", "name", code="max_length"),
    ),
    ({"name": "c", "description": {"a": 1}}, validation_error("Not a valid string.", "description")),
    (
        {"name": "c", "description": "d" * 1001},
        validation_error("Ensure this field has no more than 1000 characters.", "description", code="max_length"),
    ),
    ({"name": "c", "filters": None}, validation_error("This field may not be null.", "filters", code="null")),
    ({"name": "c", "filters": [FILTERS]}, validation_error(flag_messages.COHORT_FILTERS_NOT_OBJECT, "filters")),
    (
        {"name": "c", "filters": {"properties": []}},
        validation_error(flag_messages.COHORT_PROPERTIES_INVALID, "filters"),
    ),
    (
        {"name": "c", "filters": {"properties": {"type": "XOR", "values": []}}},
        validation_error(flag_messages.COHORT_PROPERTIES_INVALID, "filters"),
    ),
    (
        {"name": "c", "filters": {"properties": {"type": "AND", "values": {}}}},
        validation_error(flag_messages.COHORT_PROPERTIES_INVALID, "filters"),
    ),
    ({"name": "c", "is_static": "yes please"}, validation_error("Must be a valid boolean.", "is_static")),
    (
        {"name": "c", "_create_static_person_ids": ["not-a-uuid"]},
        validation_error("Must be a valid UUID.", "_create_static_person_ids__0"),
    ),
    ({"name": "c", "deleted": "gone"}, validation_error("Must be a valid boolean.", "deleted")),
]


@pytest.mark.parametrize(("payload", "expected"), BAD_INPUTS)
def test_bad_input_on_create_is_a_400_and_writes_nothing(api_client, project, payload, expected):
    response = api_client.post(cohorts_url(project), payload, format="json")

    assert response.status_code == 400
    assert response.json() == expected
    assert Cohort.objects.count() == 0


@pytest.mark.parametrize(("payload", "expected"), [case for case in BAD_INPUTS if "name" in case[0]])
def test_bad_input_on_patch_is_a_400_and_changes_nothing(api_client, project, payload, expected):
    cohort = CohortFactory(project=project)
    before = Cohort.objects.values().get(pk=cohort.pk)

    response = api_client.patch(cohort_url(project, cohort), payload, format="json")

    assert response.status_code == 400
    assert response.json() == expected
    assert Cohort.objects.values().get(pk=cohort.pk) == before


def test_patch_updates_and_ignores_read_only_fields(api_client, project):
    cohort = CohortFactory(project=project, name="Before")

    response = api_client.patch(cohort_url(project, cohort), {"name": "After", "count": 5}, format="json")

    assert response.status_code == 200, response.json()
    cohort.refresh_from_db()
    assert (cohort.name, cohort.count) == ("After", None)


def test_put_needs_the_name(api_client, project):
    cohort = CohortFactory(project=project)

    response = api_client.put(cohort_url(project, cohort), {"description": "only"}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error("This field is required.", "name", code="required")


def test_soft_delete_hides_the_cohort_from_the_list(api_client, project):
    kept = CohortFactory(project=project)
    gone = CohortFactory(project=project)

    response = api_client.patch(cohort_url(project, gone), {"deleted": True}, format="json")

    assert response.status_code == 200, response.json()
    listed = api_client.get(cohorts_url(project)).json()
    assert [cohort["id"] for cohort in listed["results"]] == [kept.pk]
    assert api_client.get(cohort_url(project, gone)).json()["deleted"] is True


def test_list_is_paginated_newest_first(api_client, project, django_assert_num_queries):
    older, newer = CohortFactory(project=project), CohortFactory(project=project)
    api_client.get(cohorts_url(project))  # the key's last_used_at is written once, on first use

    # key, project with the membership, page (with the creator joined; a short first page gives the count)
    with django_assert_num_queries(3):
        response = api_client.get(cohorts_url(project))

    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert [cohort["id"] for cohort in response.json()["results"]] == [newer.pk, older.pk]


def test_delete_answers_405_with_an_empty_body_and_keeps_the_cohort(api_client, project):
    cohort = CohortFactory(project=project)

    response = api_client.delete(cohort_url(project, cohort))

    assert response.status_code == 405
    assert response.content == b""
    assert Cohort.objects.filter(pk=cohort.pk, deleted=False).exists()


@pytest.mark.parametrize(
    ("scopes", "method", "allowed"),
    [
        (["cohort:read"], "get", True),
        (["cohort:read"], "post", False),
        (["cohort:read"], "patch", False),
        (["cohort:read"], "delete", False),
        (["cohort:write"], "post", True),
        (["cohort:write"], "patch", True),
        (["feature_flag:write"], "get", False),
    ],
)
def test_scopes(make_client, project, user, scopes, method, allowed):
    cohort = CohortFactory(project=project, name="Original")
    client = make_client(user, scopes=scopes)
    calls = {
        "get": lambda: client.get(cohort_url(project, cohort)),
        "post": lambda: client.post(cohorts_url(project), {"name": "New"}, format="json"),
        "patch": lambda: client.patch(cohort_url(project, cohort), {"name": "Changed"}, format="json"),
        "delete": lambda: client.delete(cohort_url(project, cohort)),
    }

    response = calls[method]()

    if allowed:
        assert response.status_code in (200, 201), response.json()
    else:
        needed = "cohort:read" if method == "get" else "cohort:write"
        assert response.status_code == 403
        assert response.json() == missing_scope(needed)
        assert list(Cohort.objects.values_list("name", flat=True)) == ["Original"]


def test_a_member_of_another_project_is_refused_and_sees_nothing(make_client, project):
    cohort = CohortFactory(project=project, name="Secret cohort")
    outsider = make_client(member_of(ProjectFactory()))

    responses = [
        outsider.get(cohorts_url(project)),
        outsider.get(cohort_url(project, cohort)),
        outsider.post(cohorts_url(project), {"name": "Intruder"}, format="json"),
        outsider.patch(cohort_url(project, cohort), {"name": "Pwned"}, format="json"),
    ]
    assert [response.json() for response in responses] == [NOT_A_MEMBER] * 4
    assert [response.status_code for response in responses] == [403] * 4
    assert list(Cohort.objects.values_list("name", flat=True)) == ["Secret cohort"]


def test_a_cohort_is_not_reachable_through_another_project(api_client, project, user):
    other_project = ProjectFactory()
    member_of(other_project, user)
    foreign = CohortFactory(project=other_project)

    assert api_client.get(cohort_url(project, foreign)).status_code == 404
    assert api_client.patch(cohort_url(project, foreign), {"name": "x"}, format="json").status_code == 404
    assert api_client.get(cohorts_url(project)).json()["count"] == 0
