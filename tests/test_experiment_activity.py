"""GET /api/projects/:project_id/experiments/:id/activity/: who did which lifecycle action, when, and the
before/after of what it changed; paginated, newest first, readable only inside the experiment's project."""

import datetime as dt

import pytest
from django.utils import timezone

from experiments.models import Experiment, ExperimentActivity
from tests.factories import ExperimentFactory, ProjectFactory, member_of
from tests.helpers import NOT_A_MEMBER, NOT_FOUND, missing_scope, project_not_allowed_for_key

CONTROL_TEST = [
    {"key": "control", "name": "Control", "rollout_percentage": 50},
    {"key": "test", "name": "Test", "rollout_percentage": 50},
]


def activity_url(experiment, project=None) -> str:
    return f"/api/projects/{(project or experiment.project).pk}/experiments/{experiment.pk}/activity/"


def action_url(experiment, action: str) -> str:
    return f"/api/projects/{experiment.project_id}/experiments/{experiment.pk}/{action}/"


def as_stored(value: dt.datetime) -> str:
    """Datetimes inside `changes` are written with isoformat()."""
    return value.isoformat()


def only_entry(client, experiment) -> dict:
    response = client.get(activity_url(experiment))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["count"] == 1, body
    return body["results"][0]


def test_an_entry_says_who_did_what_and_when(api_client, project, user):
    experiment = ExperimentFactory(project=project, feature_flag__active=False)
    before_call = timezone.now()

    assert api_client.post(action_url(experiment, "launch")).status_code == 200

    entry = only_entry(api_client, experiment)
    stored = ExperimentActivity.objects.get()
    experiment.refresh_from_db()
    assert entry == {
        "id": stored.pk,
        "activity": "launched",
        "user": entry["user"],
        "changes": [
            {"field": "start_date", "before": None, "after": as_stored(experiment.start_date)},
            {"field": "feature_flag_active", "before": False, "after": True},
        ],
        "created_at": stored.created_at.isoformat().replace("+00:00", "Z"),
    }
    assert {key: entry["user"][key] for key in ("id", "uuid", "email")} == {
        "id": user.pk,
        "uuid": str(user.uuid),
        "email": user.email,
    }
    assert before_call <= stored.created_at <= timezone.now()
    assert (stored.project_id, stored.experiment_id) == (project.pk, experiment.pk)


def _running(project, **extra) -> Experiment:
    return ExperimentFactory(project=project, start_date=timezone.now() - dt.timedelta(days=3), **extra)


def _stopped(project, **extra) -> Experiment:
    now = timezone.now()
    return ExperimentFactory(
        project=project, start_date=now - dt.timedelta(days=3), end_date=now - dt.timedelta(days=1), **extra
    )


@pytest.mark.parametrize(
    ("make", "action", "body", "activity", "changed"),
    [
        (
            _running,
            "end",
            {"conclusion": "lost", "conclusion_comment": "Worse"},
            "ended",
            ["end_date", "conclusion", "conclusion_comment"],
        ),
        (_running, "pause", {}, "paused", ["feature_flag_active"]),
        (
            lambda project: _running(project, feature_flag__active=False),
            "resume",
            {},
            "resumed",
            ["feature_flag_active"],
        ),
        (_stopped, "reset", {}, "reset", ["start_date", "end_date"]),
        (
            lambda project: _stopped(project, archived=True, conclusion="won"),
            "reset",
            {},
            "reset",
            ["start_date", "end_date", "archived", "conclusion"],
        ),
        (_stopped, "archive", {"disable_feature_flag": True}, "archived", ["archived", "feature_flag_active"]),
        (lambda project: _stopped(project, archived=True), "unarchive", {}, "unarchived", ["archived"]),
    ],
)
def test_each_action_records_the_fields_it_changed(api_client, project, make, action, body, activity, changed):
    experiment = make(project)
    before = Experiment.objects.select_related("feature_flag").get(pk=experiment.pk)

    response = api_client.post(action_url(experiment, action), body, format="json")

    assert response.status_code == 200, response.json()
    after = Experiment.objects.select_related("feature_flag").get(pk=experiment.pk)
    entry = only_entry(api_client, experiment)
    assert entry["activity"] == activity

    def value(experiment: Experiment, field: str):
        if field == "feature_flag_active":
            return experiment.feature_flag.active
        raw = getattr(experiment, field)
        return as_stored(raw) if isinstance(raw, dt.datetime) else raw

    fields = ("start_date", "end_date", "archived", "conclusion", "conclusion_comment", "feature_flag_active")
    expected = [
        {"field": field, "before": value(before, field), "after": value(after, field)}
        for field in fields
        if value(before, field) != value(after, field)
    ]
    assert [change["field"] for change in expected] == changed
    assert entry["changes"] == expected


def test_ship_variant_records_the_flag_split_before_and_after(api_client, project):
    experiment = _running(project)
    filters_before = experiment.feature_flag.filters

    api_client.post(action_url(experiment, "ship_variant"), {"variant_key": "test"}, format="json")

    experiment.refresh_from_db()
    entry = only_entry(api_client, experiment)
    assert entry["activity"] == "shipped_variant"
    assert entry["changes"] == [
        {"field": "end_date", "before": None, "after": as_stored(experiment.end_date)},
        {"field": "feature_flag_filters", "before": filters_before, "after": experiment.feature_flag.filters},
    ]
    assert [variant["rollout_percentage"] for variant in entry["changes"][1]["after"]["multivariate"]["variants"]] == [
        0,
        100,
    ]


def test_copy_to_project_is_recorded_on_the_source_and_on_the_copy(api_client, project, user):
    sibling = ProjectFactory(organization=project.organization)
    member_of(sibling, user)
    source = _stopped(project)

    response = api_client.post(action_url(source, "copy_to_project"), {"target_project_id": sibling.pk}, format="json")

    assert response.status_code == 201, response.json()
    copy = Experiment.objects.get(project=sibling)
    source_entry = only_entry(api_client, source)
    assert (source_entry["activity"], source_entry["changes"]) == (
        "copied_to_project",
        [{"field": "copy", "before": None, "after": {"project_id": sibling.pk, "experiment_id": copy.pk}}],
    )
    copy_entry = only_entry(api_client, copy)
    assert (copy_entry["activity"], copy_entry["changes"]) == (
        "copied",
        [{"field": "source", "before": None, "after": source.pk}],
    )
    assert copy_entry["user"]["id"] == user.pk


def test_the_log_is_newest_first_and_paginated(api_client, project):
    experiment = ExperimentFactory(project=project, feature_flag__active=False)
    for action in ("launch", "pause", "resume", "end", "archive"):
        assert api_client.post(action_url(experiment, action)).status_code == 200, action

    first = api_client.get(activity_url(experiment), {"limit": 2}).json()
    second = api_client.get(activity_url(experiment), {"limit": 2, "offset": 2}).json()
    last = api_client.get(activity_url(experiment), {"limit": 2, "offset": 4}).json()

    assert first["count"] == second["count"] == last["count"] == 5
    assert [entry["activity"] for entry in first["results"] + second["results"] + last["results"]] == [
        "archived",
        "ended",
        "resumed",
        "paused",
        "launched",
    ]
    assert first["previous"] is None
    assert first["next"].endswith(f"{activity_url(experiment)}?limit=2&offset=2")
    assert last["next"] is None


def test_an_experiment_without_actions_has_an_empty_log(api_client, project):
    experiment = ExperimentFactory(project=project)

    response = api_client.get(activity_url(experiment))

    assert response.status_code == 200
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_entries_of_other_experiments_are_not_listed(api_client, project):
    experiment, other = _running(project), _running(project)
    api_client.post(action_url(other, "pause"))

    assert api_client.get(activity_url(experiment)).json()["count"] == 0
    assert api_client.get(activity_url(other)).json()["count"] == 1


def test_another_projects_experiment_is_not_found_through_this_project(api_client, project):
    foreign = _running(ProjectFactory())
    member_of(foreign.project)  # someone else's project, with its own log
    ExperimentActivity.objects.create(project=foreign.project, experiment=foreign, activity="paused")

    response = api_client.get(activity_url(foreign, project=project))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_a_user_outside_the_project_cannot_read_the_log(project, make_client):
    experiment = _running(project)
    ExperimentActivity.objects.create(project=project, experiment=experiment, activity="paused")
    outsider = member_of(ProjectFactory())

    response = make_client(outsider).get(activity_url(experiment))

    assert response.status_code == 403
    assert response.json() == NOT_A_MEMBER


def test_a_key_limited_to_another_project_cannot_read_the_log(project, user, make_client):
    experiment = _running(project)
    other = ProjectFactory(organization=project.organization)
    member_of(other, user)

    response = make_client(user, scoped_projects=[other.pk]).get(activity_url(experiment))

    assert response.status_code == 403
    assert response.json() == project_not_allowed_for_key(project.pk)


@pytest.mark.parametrize(("scopes", "status"), [(["experiment:read"], 200), (["feature_flag:read"], 403)])
def test_reading_the_log_needs_experiment_read(project, user, make_client, scopes, status):
    experiment = _running(project)

    response = make_client(user, scopes=scopes).get(activity_url(experiment))

    assert response.status_code == status
    if status == 403:
        assert response.json() == missing_scope("experiment:read")
