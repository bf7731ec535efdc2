"""/api/projects/:project_id/experiment_saved_metrics/: CRUD, query validation, uuids, scopes and tenancy."""

import uuid

import pytest

from experiments import messages
from experiments.models import Experiment, ExperimentSavedMetric, ExperimentToSavedMetric
from tests.factories import ExperimentFactory, ProjectFactory, SavedMetricFactory, member_of
from tests.helpers import NOT_A_MEMBER, missing_scope, validation_error

MEAN_QUERY = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "amount"},
}


def saved_metrics_url(project) -> str:
    return f"/api/projects/{project.pk}/experiment_saved_metrics/"


def saved_metric_url(project, saved_metric) -> str:
    return f"/api/projects/{project.pk}/experiment_saved_metrics/{saved_metric.pk}/"


def invalid_query(problem: str) -> dict:
    return validation_error(messages.INVALID_METRIC.format(problem=problem), "query")


def test_create_gives_the_query_a_uuid(api_client, project, user):
    response = api_client.post(
        saved_metrics_url(project),
        {
            "name": "Revenue",
            "description": "Sum of purchases",
            "query": MEAN_QUERY,
            "metadata": {"owner": "growth"},
            "tags": ["revenue"],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    saved_metric = ExperimentSavedMetric.objects.get()
    body = response.json()
    assert body == {
        "id": saved_metric.pk,
        "name": "Revenue",
        "description": "Sum of purchases",
        "query": {**MEAN_QUERY, "uuid": saved_metric.query["uuid"]},
        "metadata": {"owner": "growth"},
        "tags": ["revenue"],
        "created_by": body["created_by"],
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert uuid.UUID(saved_metric.query["uuid"])
    assert body["created_by"]["id"] == user.pk
    assert (saved_metric.project, saved_metric.created_by) == (project, user)


def test_create_keeps_a_given_uuid(api_client, project):
    query = {**MEAN_QUERY, "uuid": "my-metric"}

    response = api_client.post(saved_metrics_url(project), {"name": "m", "query": query}, format="json")

    assert response.status_code == 201, response.json()
    assert ExperimentSavedMetric.objects.get().query == query


@pytest.mark.parametrize(
    "query",
    [
        {"kind": "ExperimentMetric", "metric_type": "funnel", "series": [{"kind": "EventsNode", "event": "signup"}]},
        {
            "kind": "ExperimentMetric",
            "metric_type": "ratio",
            "numerator": {"kind": "EventsNode", "event": "purchase"},
            "denominator": {"kind": "ActionsNode", "id": 3},
        },
    ],
    ids=["funnel", "ratio"],
)
def test_every_metric_type_can_be_saved(api_client, project, query):
    response = api_client.post(saved_metrics_url(project), {"name": "m", "query": query}, format="json")

    assert response.status_code == 201, response.json()


BAD_INPUTS = [
    ({"query": MEAN_QUERY}, validation_error("This field is required.", "name", code="required")),
    ({"name": None, "query": MEAN_QUERY}, validation_error("This field may not be null.", "name", code="null")),
    ({"name": ["n"], "query": MEAN_QUERY}, validation_error("Not a valid string.", "name")),
    (
        {"name": "n" * 401, "query": MEAN_QUERY},
        validation_error("Ensure this field has no more than 400 characters.", "name", code="max_length"),
    ),
    ({"name": "m", "description": {}, "query": MEAN_QUERY}, validation_error("Not a valid string.", "description")),
    (
        {"name": "m", "description": "d" * 401, "query": MEAN_QUERY},
        validation_error("Ensure this field has no more than 400 characters.", "description", code="max_length"),
    ),
    ({"name": "m"}, validation_error("This field is required.", "query", code="required")),
    ({"name": "m", "query": None}, validation_error("This field may not be null.", "query", code="null")),
    ({"name": "m", "query": [MEAN_QUERY]}, invalid_query(messages.NOT_A_DICT)),
    ({"name": "m", "query": "mean"}, invalid_query(messages.NOT_A_DICT)),
    (
        {"name": "m", "query": {"kind": "ExperimentTrendsQuery", "count_query": {}}},
        invalid_query(messages.LEGACY_KIND.format(kind="ExperimentTrendsQuery")),
    ),
    ({"name": "m", "query": {**MEAN_QUERY, "kind": "TrendsQuery"}}, invalid_query(messages.WRONG_KIND)),
    (
        {"name": "m", "query": {**MEAN_QUERY, "metric_type": "median"}},
        invalid_query(messages.WRONG_METRIC_TYPE),
    ),
    (
        {"name": "m", "query": {"kind": "ExperimentMetric", "metric_type": "funnel", "series": []}},
        invalid_query(messages.FUNNEL_WITHOUT_STEPS),
    ),
    (
        {"name": "m", "query": {**MEAN_QUERY, "source": {"kind": "EventsNode", "event": "e", "math": "sum"}}},
        invalid_query(messages.MATH_PROPERTY_REQUIRED.format(path="source", math="sum")),
    ),
    (
        {"name": "m", "query": {**MEAN_QUERY, "uuid": "u" * 256}},
        invalid_query(messages.UUID_INVALID),
    ),
    ({"name": "m", "query": MEAN_QUERY, "metadata": ["a"]}, validation_error(messages.METADATA_NOT_OBJECT, "metadata")),
    (
        {"name": "m", "query": MEAN_QUERY, "metadata": "primary"},
        validation_error(messages.METADATA_NOT_OBJECT, "metadata"),
    ),
    (
        {"name": "m", "query": MEAN_QUERY, "tags": {"a": 1}},
        validation_error('Expected a list of items but got type "dict".', "tags", code="not_a_list"),
    ),
    (
        {"name": "m", "query": MEAN_QUERY, "tags": ["t" * 256]},
        validation_error("Ensure this field has no more than 255 characters.", "tags__0", code="max_length"),
    ),
]


@pytest.mark.parametrize(("payload", "expected"), BAD_INPUTS)
def test_bad_input_on_create_is_a_400_and_writes_nothing(api_client, project, payload, expected):
    response = api_client.post(saved_metrics_url(project), payload, format="json")

    assert response.status_code == 400
    assert response.json() == expected
    assert ExperimentSavedMetric.objects.count() == 0


@pytest.mark.parametrize(("payload", "expected"), [case for case in BAD_INPUTS if case[1]["code"] != "required"])
def test_bad_input_on_patch_is_a_400_and_changes_nothing(api_client, project, payload, expected):
    saved_metric = SavedMetricFactory(project=project)
    before = ExperimentSavedMetric.objects.values().get(pk=saved_metric.pk)

    response = api_client.patch(saved_metric_url(project, saved_metric), payload, format="json")

    assert response.status_code == 400
    assert response.json() == expected
    assert ExperimentSavedMetric.objects.values().get(pk=saved_metric.pk) == before


def test_patching_the_query_without_uuid_keeps_the_old_uuid(api_client, project):
    saved_metric = SavedMetricFactory(project=project)
    old_uuid = saved_metric.query["uuid"]

    response = api_client.patch(saved_metric_url(project, saved_metric), {"query": MEAN_QUERY}, format="json")

    assert response.status_code == 200, response.json()
    saved_metric.refresh_from_db()
    assert saved_metric.query == {**MEAN_QUERY, "uuid": old_uuid}


def test_put_needs_name_and_query(api_client, project):
    saved_metric = SavedMetricFactory(project=project)

    response = api_client.put(saved_metric_url(project, saved_metric), {"name": "Only a name"}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error("This field is required.", "query", code="required")


def test_delete_removes_the_metric_and_its_experiment_links(api_client, project):
    saved_metric = SavedMetricFactory(project=project)
    experiment = ExperimentFactory(project=project)
    ExperimentToSavedMetric.objects.create(
        experiment=experiment, saved_metric=saved_metric, metadata={"type": "primary"}
    )

    response = api_client.delete(saved_metric_url(project, saved_metric))

    assert response.status_code == 204
    assert not ExperimentSavedMetric.objects.exists()
    assert not ExperimentToSavedMetric.objects.exists()
    assert Experiment.objects.filter(pk=experiment.pk).exists()


def test_list_is_newest_first(api_client, project, django_assert_num_queries):
    older, newer = SavedMetricFactory(project=project), SavedMetricFactory(project=project)
    SavedMetricFactory()  # another project's
    api_client.get(saved_metrics_url(project))  # the key's last_used_at is written once, on first use

    # key, project with the membership, page (with the creator joined; a short first page gives the count)
    with django_assert_num_queries(3):
        response = api_client.get(saved_metrics_url(project))

    assert [saved_metric["id"] for saved_metric in response.json()["results"]] == [newer.pk, older.pk]


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
        (["feature_flag:read"], "get", False),
    ],
)
def test_scopes(make_client, project, user, scopes, method, allowed):
    saved_metric = SavedMetricFactory(project=project, name="Original")
    client = make_client(user, scopes=scopes)
    calls = {
        "get": lambda: client.get(saved_metric_url(project, saved_metric)),
        "post": lambda: client.post(saved_metrics_url(project), {"name": "New", "query": MEAN_QUERY}, format="json"),
        "patch": lambda: client.patch(saved_metric_url(project, saved_metric), {"name": "Changed"}, format="json"),
        "delete": lambda: client.delete(saved_metric_url(project, saved_metric)),
    }

    response = calls[method]()

    if allowed:
        assert response.status_code in (200, 201, 204)
    else:
        needed = "experiment:read" if method == "get" else "experiment:write"
        assert response.status_code == 403
        assert response.json() == missing_scope(needed)
        assert list(ExperimentSavedMetric.objects.values_list("name", flat=True)) == ["Original"]


def test_a_member_of_another_project_is_refused_and_sees_nothing(make_client, project):
    saved_metric = SavedMetricFactory(project=project, name="Secret metric")
    outsider = make_client(member_of(ProjectFactory()))

    responses = [
        outsider.get(saved_metrics_url(project)),
        outsider.get(saved_metric_url(project, saved_metric)),
        outsider.post(saved_metrics_url(project), {"name": "x", "query": MEAN_QUERY}, format="json"),
        outsider.patch(saved_metric_url(project, saved_metric), {"name": "Pwned"}, format="json"),
        outsider.delete(saved_metric_url(project, saved_metric)),
    ]
    assert [response.status_code for response in responses] == [403] * 5
    assert [response.json() for response in responses] == [NOT_A_MEMBER] * 5
    assert list(ExperimentSavedMetric.objects.values_list("name", flat=True)) == ["Secret metric"]


def test_a_saved_metric_is_not_reachable_through_another_project(api_client, project, user):
    other_project = ProjectFactory()
    member_of(other_project, user)
    foreign = SavedMetricFactory(project=other_project)

    assert api_client.get(saved_metric_url(project, foreign)).status_code == 404
    assert api_client.delete(saved_metric_url(project, foreign)).status_code == 404
    assert ExperimentSavedMetric.objects.filter(pk=foreign.pk).exists()
