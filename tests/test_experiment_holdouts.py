"""/api/projects/:project_id/experiment_holdouts/: CRUD, validation, the flags rewritten on update and delete."""

import pytest

from experiments import messages
from experiments.models import Experiment, ExperimentHoldout
from flags.models import FeatureFlag
from tests.factories import ExperimentFactory, FeatureFlagFactory, HoldoutFactory, ProjectFactory, member_of
from tests.helpers import NOT_A_MEMBER, missing_scope, validation_error


def holdouts_url(project) -> str:
    return f"/api/projects/{project.pk}/experiment_holdouts/"


def holdout_url(project, holdout) -> str:
    return f"/api/projects/{project.pk}/experiment_holdouts/{holdout.pk}/"


def test_create_tags_every_group_with_the_holdout_variant(api_client, project, user):
    groups = [{"properties": [], "rollout_percentage": 10}, {"properties": [], "rollout_percentage": 5}]

    response = api_client.post(
        holdouts_url(project), {"name": "Q3 holdout", "description": "10% of users", "filters": groups}, format="json"
    )

    assert response.status_code == 201, response.json()
    holdout = ExperimentHoldout.objects.get()
    tagged = [{**group, "variant": f"holdout-{holdout.pk}"} for group in groups]
    body = response.json()
    assert body == {
        "id": holdout.pk,
        "name": "Q3 holdout",
        "description": "10% of users",
        "filters": tagged,
        "created_by": body["created_by"],
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["created_by"]["id"] == user.pk
    assert (holdout.filters, holdout.project, holdout.created_by) == (tagged, project, user)


def test_a_variant_sent_by_the_client_is_replaced(api_client, project):
    response = api_client.post(
        holdouts_url(project),
        {"name": "h", "filters": [{"rollout_percentage": 20, "variant": "control"}]},
        format="json",
    )

    assert response.status_code == 201, response.json()
    holdout = ExperimentHoldout.objects.get()
    assert holdout.filters == [{"rollout_percentage": 20, "variant": f"holdout-{holdout.pk}"}]


BAD_INPUTS = [
    ({"filters": [{"rollout_percentage": 10}]}, validation_error("This field is required.", "name", code="required")),
    ({"name": None}, validation_error("This field may not be null.", "name", code="null")),
    ({"name": {"x": 1}}, validation_error("Not a valid string.", "name")),
    (
        {"name": "n" * 401},
        validation_error("Ensure this field has no more than 400 characters.", "name", code="max_length"),
    ),
    ({"name": "h", "description": ["d"]}, validation_error("Not a valid string.", "description")),
    (
        {"name": "h", "description": "d" * 401},
        validation_error("Ensure this field has no more than 400 characters.", "description", code="max_length"),
    ),
    ({"name": "h"}, validation_error("This field is required.", "filters", code="required")),
    ({"name": "h", "filters": None}, validation_error("This field may not be null.", "filters", code="null")),
    (
        {"name": "h", "filters": {"rollout_percentage": 10}},
        validation_error(messages.HOLDOUT_FILTERS_NOT_LIST, "filters"),
    ),
    ({"name": "h", "filters": []}, validation_error(messages.HOLDOUT_FILTERS_NOT_LIST, "filters")),
    (
        {"name": "h", "filters": [10]},
        validation_error(messages.HOLDOUT_GROUP_NOT_OBJECT.format(index=0), "filters"),
    ),
    ({"name": "h", "filters": [{"properties": []}]}, validation_error(messages.ROLLOUT_PERCENTAGE_MISSING, "filters")),
    (
        {"name": "h", "filters": [{"rollout_percentage": None}]},
        validation_error(messages.ROLLOUT_PERCENTAGE_MISSING, "filters"),
    ),
    (
        {"name": "h", "filters": [{"rollout_percentage": 150}]},
        validation_error(messages.ROLLOUT_PERCENTAGE_OUT_OF_RANGE, "filters"),
    ),
    (
        {"name": "h", "filters": [{"rollout_percentage": -5}]},
        validation_error(messages.ROLLOUT_PERCENTAGE_OUT_OF_RANGE, "filters"),
    ),
    (
        {"name": "h", "filters": [{"rollout_percentage": "50"}]},
        validation_error(messages.ROLLOUT_PERCENTAGE_OUT_OF_RANGE, "filters"),
    ),
    (
        {"name": "h", "filters": [{"rollout_percentage": 10, "properties": "country=FR"}]},
        validation_error(messages.HOLDOUT_GROUP_PROPERTIES_NOT_LIST.format(index=0), "filters"),
    ),
]


@pytest.mark.parametrize(("payload", "expected"), BAD_INPUTS)
def test_bad_input_on_create_is_a_400_and_writes_nothing(api_client, project, payload, expected):
    response = api_client.post(holdouts_url(project), payload, format="json")

    assert response.status_code == 400
    assert response.json() == expected
    assert ExperimentHoldout.objects.count() == 0


@pytest.fixture
def linked(project):
    """A holdout used by two experiments (on two flags), and an unrelated flag."""
    holdout = HoldoutFactory(project=project)
    first = ExperimentFactory(project=project, holdout=holdout)
    second = ExperimentFactory(project=project, holdout=holdout)
    for experiment in (first, second):
        FeatureFlag.objects.filter(pk=experiment.feature_flag_id).update(
            filters={**experiment.feature_flag.filters, "holdout_groups": holdout.filters}
        )
    unrelated = FeatureFlagFactory(project=project)
    return {"holdout": holdout, "flags": [first.feature_flag, second.feature_flag], "unrelated": unrelated}


@pytest.mark.parametrize(
    ("payload", "expected"), [case for case in BAD_INPUTS if "name" in case[0] and "filters" in case[0]]
)
def test_bad_input_on_patch_is_a_400_and_changes_nothing(api_client, project, linked, payload, expected):
    holdout = linked["holdout"]
    before = ExperimentHoldout.objects.values().get(pk=holdout.pk)
    flags_before = list(FeatureFlag.objects.order_by("pk").values())

    response = api_client.patch(holdout_url(project, holdout), payload, format="json")

    assert response.status_code == 400
    assert response.json() == expected
    assert ExperimentHoldout.objects.values().get(pk=holdout.pk) == before
    assert list(FeatureFlag.objects.order_by("pk").values()) == flags_before


def test_holdout_group_properties_must_be_filters(api_client, project):
    response = api_client.post(
        f"/api/projects/{project.id}/experiment_holdouts/",
        {"name": "H", "filters": [{"rollout_percentage": 10, "properties": ["x"]}]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == validation_error(messages.HOLDOUT_GROUP_PROPERTIES_NOT_LIST.format(index=0), "filters")


def test_updating_filters_rewrites_the_holdout_groups_of_linked_flags(api_client, project, user, linked):
    holdout = linked["holdout"]
    unrelated_before = FeatureFlag.objects.values().get(pk=linked["unrelated"].pk)

    response = api_client.patch(
        holdout_url(project, holdout), {"filters": [{"properties": [], "rollout_percentage": 25}]}, format="json"
    )

    assert response.status_code == 200, response.json()
    new_groups = [{"properties": [], "rollout_percentage": 25, "variant": f"holdout-{holdout.pk}"}]
    assert response.json()["filters"] == new_groups
    for flag in linked["flags"]:
        flag.refresh_from_db()
        assert flag.filters["holdout_groups"] == new_groups
        assert flag.filters["multivariate"]["variants"][0]["key"] == "control"
        assert (flag.version, flag.last_modified_by) == (2, user)
    assert FeatureFlag.objects.values().get(pk=linked["unrelated"].pk) == unrelated_before


def test_renaming_a_holdout_leaves_the_flags_alone(api_client, project, linked):
    flags_before = list(FeatureFlag.objects.order_by("pk").values())

    response = api_client.patch(holdout_url(project, linked["holdout"]), {"name": "Renamed"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Renamed"
    assert list(FeatureFlag.objects.order_by("pk").values()) == flags_before


def test_put_needs_name_and_filters(api_client, project, linked):
    response = api_client.put(holdout_url(project, linked["holdout"]), {"name": "Only a name"}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error("This field is required.", "filters", code="required")


def test_delete_clears_the_linked_flags_and_unlinks_the_experiments(api_client, project, linked):
    holdout = linked["holdout"]
    unrelated_before = FeatureFlag.objects.values().get(pk=linked["unrelated"].pk)

    response = api_client.delete(holdout_url(project, holdout))

    assert response.status_code == 204
    assert not ExperimentHoldout.objects.filter(pk=holdout.pk).exists()
    for flag in linked["flags"]:
        flag.refresh_from_db()
        assert flag.filters["holdout_groups"] is None
        assert flag.version == 2
    assert Experiment.objects.filter(holdout__isnull=True).count() == 2
    assert FeatureFlag.objects.values().get(pk=linked["unrelated"].pk) == unrelated_before


def test_list_and_retrieve(api_client, project, django_assert_num_queries):
    older, newer = HoldoutFactory(project=project), HoldoutFactory(project=project)
    HoldoutFactory()  # another project's
    api_client.get(holdouts_url(project))  # the key's last_used_at is written once, on first use

    # key, project with the membership, page (with the creator joined; a short first page gives the count)
    with django_assert_num_queries(3):
        listed = api_client.get(holdouts_url(project))
    retrieved = api_client.get(holdout_url(project, older))

    assert [holdout["id"] for holdout in listed.json()["results"]] == [newer.pk, older.pk]
    assert retrieved.json()["filters"] == [
        {"properties": [], "rollout_percentage": 10, "variant": f"holdout-{older.pk}"}
    ]


@pytest.mark.parametrize(
    ("scopes", "method", "allowed"),
    [
        (["experiment:read"], "get", True),
        (["experiment:read"], "post", False),
        (["experiment:read"], "patch", False),
        (["experiment:read"], "delete", False),
        (["experiment:write"], "post", True),
        (["experiment:write"], "patch", True),
        (["experiment:write"], "delete", True),
        (["feature_flag:write"], "get", False),
    ],
)
def test_scopes(make_client, project, user, scopes, method, allowed):
    holdout = HoldoutFactory(project=project, name="Original")
    client = make_client(user, scopes=scopes)
    calls = {
        "get": lambda: client.get(holdout_url(project, holdout)),
        "post": lambda: client.post(
            holdouts_url(project), {"name": "New", "filters": [{"rollout_percentage": 5}]}, format="json"
        ),
        "patch": lambda: client.patch(holdout_url(project, holdout), {"name": "Changed"}, format="json"),
        "delete": lambda: client.delete(holdout_url(project, holdout)),
    }

    response = calls[method]()

    if allowed:
        assert response.status_code in (200, 201, 204)
    else:
        needed = "experiment:read" if method == "get" else "experiment:write"
        assert response.status_code == 403
        assert response.json() == missing_scope(needed)
        assert list(ExperimentHoldout.objects.values_list("name", flat=True)) == ["Original"]


def test_a_member_of_another_project_is_refused_and_sees_nothing(make_client, project):
    holdout = HoldoutFactory(project=project, name="Secret holdout")
    outsider = make_client(member_of(ProjectFactory()))

    responses = [
        outsider.get(holdouts_url(project)),
        outsider.get(holdout_url(project, holdout)),
        outsider.post(holdouts_url(project), {"name": "x", "filters": [{"rollout_percentage": 1}]}, format="json"),
        outsider.patch(holdout_url(project, holdout), {"name": "Pwned"}, format="json"),
        outsider.delete(holdout_url(project, holdout)),
    ]
    assert [response.status_code for response in responses] == [403] * 5
    assert [response.json() for response in responses] == [NOT_A_MEMBER] * 5
    assert list(ExperimentHoldout.objects.values_list("name", flat=True)) == ["Secret holdout"]


def test_a_holdout_is_not_reachable_through_another_project(api_client, project, user):
    other_project = ProjectFactory()
    member_of(other_project, user)
    foreign = HoldoutFactory(project=other_project)

    assert api_client.get(holdout_url(project, foreign)).status_code == 404
    assert api_client.delete(holdout_url(project, foreign)).status_code == 404
    assert ExperimentHoldout.objects.filter(pk=foreign.pk).exists()
