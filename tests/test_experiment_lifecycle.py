"""Lifecycle actions of /api/projects/:project_id/experiments/:id/<action>/: every transition allowed and refused,
the flag after each, failures that change nothing, scopes, `status`, concurrency and copy_to_project."""

import datetime as dt
import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from experiments import messages
from experiments.definitions.fingerprint import experiment_metric_fingerprint
from experiments.models import Experiment, ExperimentActivity
from experiments.services.lifecycle import experiment_ship_variant
from experiments_api.exceptions import error_body
from flags import messages as flag_messages
from flags.models import FeatureFlag
from flags.services import feature_flag_update
from tests.factories import (
    ExperimentFactory,
    FeatureFlagFactory,
    ProjectFactory,
    UserFactory,
    mean_metric,
    member_of,
)
from tests.helpers import NOT_A_MEMBER, NOT_FOUND, missing_scope, project_not_allowed_for_key, validation_error

CONTROL_TEST_THIRD = [
    {"key": "control", "name": "Control", "rollout_percentage": 34},
    {"key": "test", "name": "Test", "rollout_percentage": 33},
    {"key": "test-2", "name": "Test 2", "rollout_percentage": 33},
]


def experiments_url(project) -> str:
    return f"/api/projects/{project.pk}/experiments/"


def action_url(experiment, action: str) -> str:
    return f"/api/projects/{experiment.project_id}/experiments/{experiment.pk}/{action}/"


def days_ago(days: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


def as_api_datetime(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def stored(experiment: Experiment) -> tuple[dict, dict]:
    """The experiment's and its flag's rows as stored, `updated_at` and `version` included."""
    return (
        Experiment.objects.filter(pk=experiment.pk).values().get(),
        FeatureFlag.objects.filter(pk=experiment.feature_flag_id).values().get(),
    )


def flag_of(experiment: Experiment) -> FeatureFlag:
    return FeatureFlag.objects.get(pk=experiment.feature_flag_id)


# The states an experiment can be in, built with the ORM so each test starts exactly where it needs to.
def draft(project, **extra) -> Experiment:
    return ExperimentFactory(project=project, feature_flag__active=False, **extra)


def running(project, **extra) -> Experiment:
    return ExperimentFactory(project=project, start_date=days_ago(7), **extra)


def paused(project, **extra) -> Experiment:
    return ExperimentFactory(project=project, start_date=days_ago(7), feature_flag__active=False, **extra)


def stopped(project, **extra) -> Experiment:
    return ExperimentFactory(
        project=project,
        start_date=days_ago(7),
        end_date=days_ago(1),
        conclusion="won",
        conclusion_comment="Clear winner",
        **extra,
    )


def archived(project, **extra) -> Experiment:
    return stopped(project, archived=True, **extra)


STATES = {"draft": draft, "running": running, "paused": paused, "stopped": stopped, "archived": archived}


@pytest.fixture
def sibling(project, user):
    """Another project of the same organization, with `user` as a member."""
    sibling = ProjectFactory(organization=project.organization)
    member_of(sibling, user)
    return sibling


# --- refused transitions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "action", "body", "detail", "attr"),
    [
        ("running", "launch", {}, messages.ALREADY_LAUNCHED, None),
        ("paused", "launch", {}, messages.ALREADY_LAUNCHED, None),
        ("stopped", "launch", {}, messages.ALREADY_LAUNCHED, None),
        ("archived", "launch", {}, messages.ALREADY_LAUNCHED, None),
        ("draft", "end", {}, messages.NOT_LAUNCHED, None),
        ("stopped", "end", {"conclusion": "lost"}, messages.ALREADY_ENDED, None),
        ("draft", "pause", {}, messages.NOT_LAUNCHED, None),
        ("paused", "pause", {}, messages.ALREADY_PAUSED, None),
        ("stopped", "pause", {}, messages.ALREADY_ENDED, None),
        ("draft", "resume", {}, messages.NOT_LAUNCHED, None),
        ("running", "resume", {}, messages.NOT_PAUSED, None),
        ("stopped", "resume", {}, messages.ALREADY_ENDED, None),
        ("draft", "reset", {}, messages.ALREADY_DRAFT, None),
        ("draft", "ship_variant", {"variant_key": "test"}, messages.NOT_LAUNCHED, None),
        (
            "running",
            "ship_variant",
            {"variant_key": "nope"},
            messages.UNKNOWN_VARIANT.format(variant="nope", valid="control, test"),
            "variant_key",
        ),
        (
            "stopped",
            "ship_variant",
            {"variant_key": "Test"},
            messages.UNKNOWN_VARIANT.format(variant="Test", valid="control, test"),
            "variant_key",
        ),
        ("draft", "archive", {}, messages.ARCHIVE_BEFORE_END, None),
        ("running", "archive", {}, messages.ARCHIVE_BEFORE_END, None),
        ("paused", "archive", {"disable_feature_flag": True}, messages.ARCHIVE_BEFORE_END, None),
        ("archived", "archive", {}, messages.ALREADY_ARCHIVED, None),
        ("draft", "unarchive", {}, messages.NOT_ARCHIVED, None),
        ("stopped", "unarchive", {}, messages.NOT_ARCHIVED, None),
    ],
)
def test_a_refused_transition_answers_400_and_changes_nothing(api_client, project, state, action, body, detail, attr):
    experiment = STATES[state](project)
    before = stored(experiment)

    response = api_client.post(action_url(experiment, action), body, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error(detail, attr)
    assert stored(experiment) == before
    assert not ExperimentActivity.objects.exists()


@pytest.mark.parametrize(
    ("variants", "detail"),
    [
        ([{"key": "control", "rollout_percentage": 100}], messages.ONE_VARIANT),
        (None, messages.ONE_VARIANT),
        (
            [{"key": "a", "rollout_percentage": 50}, {"key": "b", "rollout_percentage": 50}],
            messages.FLAG_NEEDS_CONTROL,
        ),
    ],
    ids=["one-variant", "boolean-flag", "no-control"],
)
def test_launch_refuses_a_flag_unfit_for_an_experiment(api_client, project, variants, detail):
    filters = {"groups": [{"properties": [], "rollout_percentage": 100}]}
    if variants is not None:
        filters["multivariate"] = {"variants": variants}
    flag = FeatureFlagFactory(project=project, active=False, filters=filters)
    experiment = ExperimentFactory(project=project, feature_flag=flag)
    before = stored(experiment)

    response = api_client.post(action_url(experiment, "launch"))

    assert response.status_code == 400
    assert response.json() == validation_error(detail)
    assert stored(experiment) == before
    assert flag_of(experiment).active is False
    assert not ExperimentActivity.objects.exists()


def test_launch_refuses_a_deleted_flag(api_client, project):
    experiment = draft(project, feature_flag__deleted=True)
    before = stored(experiment)

    response = api_client.post(action_url(experiment, "launch"))

    assert response.status_code == 400
    assert response.json() == validation_error(messages.LAUNCH_WITH_DELETED_FLAG)
    assert stored(experiment) == before


def test_ship_variant_refuses_a_deleted_flag(api_client, project):
    experiment = running(project, feature_flag__deleted=True)
    before = stored(experiment)

    response = api_client.post(action_url(experiment, "ship_variant"), {"variant_key": "test"}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error(messages.FLAG_DELETED)
    assert stored(experiment) == before


def test_ship_variant_on_a_flag_its_own_validation_refuses_changes_nothing(api_client, project):
    """The flag write is validated like any flag update; its refusal rolls back the experiment's end too."""
    experiment = running(project)
    FeatureFlag.objects.filter(pk=experiment.feature_flag_id).update(
        filters={**experiment.feature_flag.filters, "groups": [{"properties": [], "rollout_percentage": 150}]}
    )
    before = stored(experiment)

    response = api_client.post(action_url(experiment, "ship_variant"), {"variant_key": "test"}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error(flag_messages.GROUP_ROLLOUT_INVALID.format(index=0), "filters")
    assert stored(experiment) == before
    assert not ExperimentActivity.objects.exists()


@pytest.mark.parametrize(
    ("action", "body", "expected"),
    [
        ("ship_variant", {}, validation_error("This field is required.", "variant_key", code="required")),
        (
            "end",
            {"conclusion": "maybe"},
            validation_error('"maybe" is not a valid choice.', "conclusion", code="invalid_choice"),
        ),
        (
            "ship_variant",
            {"variant_key": "test", "release_to_everyone": "perhaps"},
            validation_error("Must be a valid boolean.", "release_to_everyone"),
        ),
        ("archive", {"disable_feature_flag": []}, validation_error("Must be a valid boolean.", "disable_feature_flag")),
    ],
)
def test_a_malformed_action_body_answers_400_and_changes_nothing(api_client, project, action, body, expected):
    experiment = running(project)
    before = stored(experiment)

    response = api_client.post(action_url(experiment, action), body, format="json")

    assert response.status_code == 400
    assert response.json() == expected
    assert stored(experiment) == before


@pytest.mark.parametrize("action", ["launch", "end", "pause", "resume", "reset", "ship_variant", "archive"])
def test_actions_on_a_deleted_or_foreign_experiment_are_not_found(api_client, project, action):
    deleted = running(project, deleted=True)
    foreign = running(ProjectFactory())

    for experiment, url in [
        (deleted, action_url(deleted, action)),
        (foreign, f"/api/projects/{project.pk}/experiments/{foreign.pk}/{action}/"),
    ]:
        before = stored(experiment)
        response = api_client.post(url, {"variant_key": "test"}, format="json")

        assert response.status_code == 404
        assert response.json() == NOT_FOUND
        assert stored(experiment) == before


# --- allowed transitions and the flag after each --------------------------------------------------------------


def test_launch_starts_a_draft_and_activates_its_flag(api_client, project):
    experiment = draft(project, metrics=[mean_metric(uuid="primary-1")])
    draft_fingerprint = experiment_metric_fingerprint(experiment, experiment.metrics[0])
    flag_before = flag_of(experiment)
    started_after = timezone.now()

    response = api_client.post(action_url(experiment, "launch"))

    assert response.status_code == 200, response.json()
    experiment.refresh_from_db()
    flag = flag_of(experiment)
    assert started_after <= experiment.start_date <= timezone.now()
    assert experiment.end_date is None
    assert flag.active is True
    assert flag.filters == flag_before.filters
    assert flag.version == flag_before.version + 1
    fingerprint = experiment.metrics[0]["fingerprint"]
    assert fingerprint == experiment_metric_fingerprint(experiment, experiment.metrics[0]) != draft_fingerprint
    body = response.json()
    assert body["id"] == experiment.pk
    assert body["status"] == "running"
    assert body["start_date"] == as_api_datetime(experiment.start_date)
    assert body["feature_flag"]["active"] is True
    assert body["feature_flag"]["version"] == flag.version
    assert body["metrics"][0]["fingerprint"] == fingerprint


def test_launch_of_an_experiment_created_through_the_api(api_client, project):
    created = api_client.post(
        experiments_url(project),
        {
            "name": "Checkout",
            "feature_flag_key": "checkout",
            "parameters": {"feature_flag_variants": CONTROL_TEST_THIRD},
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    experiment = Experiment.objects.get(pk=created.json()["id"])
    assert flag_of(experiment).active is False

    response = api_client.post(action_url(experiment, "launch"))

    assert response.status_code == 200, response.json()
    flag = flag_of(experiment)
    assert flag.active is True
    assert flag.variants == CONTROL_TEST_THIRD
    assert response.json()["status"] == "running"


def test_launch_accepts_a_control_variant_in_any_position(api_client, project):
    variants = [{"key": "test", "rollout_percentage": 50}, {"key": "control", "rollout_percentage": 50}]
    flag = FeatureFlagFactory(project=project, active=False, filters={"multivariate": {"variants": variants}})
    experiment = ExperimentFactory(project=project, feature_flag=flag)

    response = api_client.post(action_url(experiment, "launch"))

    assert response.status_code == 200, response.json()
    assert flag_of(experiment).active is True


def test_end_stops_a_running_experiment_and_leaves_the_flag_untouched(api_client, project):
    experiment = running(project)
    _, flag_before = stored(experiment)
    ended_after = timezone.now()

    response = api_client.post(
        action_url(experiment, "end"), {"conclusion": "won", "conclusion_comment": "Test wins"}, format="json"
    )

    assert response.status_code == 200, response.json()
    experiment.refresh_from_db()
    assert ended_after <= experiment.end_date <= timezone.now()
    assert (experiment.conclusion, experiment.conclusion_comment) == ("won", "Test wins")
    assert stored(experiment)[1] == flag_before
    body = response.json()
    assert body["status"] == "stopped"
    assert body["end_date"] == as_api_datetime(experiment.end_date)
    assert (body["conclusion"], body["conclusion_comment"]) == ("won", "Test wins")


def test_end_of_a_paused_experiment_keeps_its_flag_inactive(api_client, project):
    experiment = paused(project)
    _, flag_before = stored(experiment)

    response = api_client.post(action_url(experiment, "end"))

    assert response.status_code == 200, response.json()
    experiment.refresh_from_db()
    assert experiment.end_date is not None
    assert (experiment.conclusion, experiment.conclusion_comment) == (None, None)
    assert stored(experiment)[1] == flag_before
    assert response.json()["status"] == "stopped"


def test_pause_deactivates_the_flag_and_resume_reactivates_it(api_client, project):
    experiment = running(project)
    flag_before = flag_of(experiment)
    experiment_before, _ = stored(experiment)

    paused_response = api_client.post(action_url(experiment, "pause"))

    assert paused_response.status_code == 200, paused_response.json()
    flag = flag_of(experiment)
    assert flag.active is False
    assert flag.version == flag_before.version + 1
    assert flag.filters == flag_before.filters
    assert paused_response.json()["status"] == "paused"
    assert paused_response.json()["feature_flag"]["active"] is False

    resumed_response = api_client.post(action_url(experiment, "resume"))

    assert resumed_response.status_code == 200, resumed_response.json()
    flag = flag_of(experiment)
    assert flag.active is True
    assert flag.version == flag_before.version + 2
    assert flag.filters == flag_before.filters
    assert resumed_response.json()["status"] == "running"
    experiment_after, _ = stored(experiment)
    assert {key: experiment_after[key] for key in ("start_date", "end_date", "conclusion", "archived")} == {
        key: experiment_before[key] for key in ("start_date", "end_date", "conclusion", "archived")
    }


@pytest.mark.parametrize("state", ["running", "paused", "stopped", "archived"])
def test_reset_returns_to_draft_and_leaves_the_flag_untouched(api_client, project, state):
    experiment = STATES[state](project, metrics=[mean_metric(uuid="primary-1")])
    _, flag_before = stored(experiment)

    response = api_client.post(action_url(experiment, "reset"))

    assert response.status_code == 200, response.json()
    experiment.refresh_from_db()
    assert (experiment.start_date, experiment.end_date) == (None, None)
    assert (experiment.conclusion, experiment.conclusion_comment) == (None, None)
    assert experiment.archived is False
    assert experiment.metrics[0]["fingerprint"] == experiment_metric_fingerprint(experiment, experiment.metrics[0])
    assert stored(experiment)[1] == flag_before
    assert response.json()["status"] == "draft"


def test_ship_variant_serves_the_variant_and_ends_a_running_experiment(api_client, project):
    experiment = running(project)
    flag_before = flag_of(experiment)
    ended_after = timezone.now()

    response = api_client.post(
        action_url(experiment, "ship_variant"),
        {"variant_key": "test", "conclusion": "won", "conclusion_comment": "Ship it"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    experiment.refresh_from_db()
    flag = flag_of(experiment)
    assert flag.variants == [
        {"key": "control", "name": "Control", "rollout_percentage": 0},
        {"key": "test", "name": "Test", "rollout_percentage": 100},
    ]
    assert flag.filters["groups"] == flag_before.filters["groups"]
    assert flag.active is True
    assert flag.version == flag_before.version + 1
    assert ended_after <= experiment.end_date <= timezone.now()
    assert (experiment.conclusion, experiment.conclusion_comment) == ("won", "Ship it")
    body = response.json()
    assert body["status"] == "stopped"
    assert body["feature_flag"]["filters"] == flag.filters


def test_ship_variant_with_release_to_everyone_adds_a_catch_all_release_condition(api_client, project):
    filters = {
        "groups": [{"properties": [{"key": "plan", "value": ["pro"], "type": "person"}], "rollout_percentage": 20}],
        "multivariate": {"variants": CONTROL_TEST_THIRD},
        "payloads": {"test-2": '{"color": "green"}'},
    }
    experiment = running(project, feature_flag__filters=filters)

    response = api_client.post(
        action_url(experiment, "ship_variant"), {"variant_key": "test-2", "release_to_everyone": True}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert flag_of(experiment).filters == {
        "groups": [*filters["groups"], {"properties": [], "rollout_percentage": 100}],
        "multivariate": {
            "variants": [
                {"key": "control", "name": "Control", "rollout_percentage": 0},
                {"key": "test", "name": "Test", "rollout_percentage": 0},
                {"key": "test-2", "name": "Test 2", "rollout_percentage": 100},
            ]
        },
        "payloads": {"test-2": '{"color": "green"}'},
    }


def test_ship_variant_with_release_to_everyone_on_a_flag_without_groups(api_client, project):
    url = f"/api/projects/{project.id}/experiments/"
    experiment = api_client.post(url, {"name": "E", "feature_flag_key": "e"}, format="json").json()
    api_client.post(f"{url}{experiment['id']}/launch/")
    flag = FeatureFlag.objects.get()
    flag.filters = {**flag.filters, "groups": None}
    flag.save()

    response = api_client.post(
        f"{url}{experiment['id']}/ship_variant/", {"variant_key": "test", "release_to_everyone": True}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert FeatureFlag.objects.get().filters["groups"] == [{"properties": [], "rollout_percentage": 100}]


def test_ship_variant_after_the_end_keeps_the_end_date_and_conclusion(api_client, project):
    experiment = stopped(project)
    ended_at = experiment.end_date

    response = api_client.post(action_url(experiment, "ship_variant"), {"variant_key": "control"}, format="json")

    assert response.status_code == 200, response.json()
    experiment.refresh_from_db()
    assert experiment.end_date == ended_at
    assert (experiment.conclusion, experiment.conclusion_comment) == ("won", "Clear winner")
    assert [variant["rollout_percentage"] for variant in flag_of(experiment).variants] == [100, 0]


def test_archive_hides_an_ended_experiment_and_leaves_the_flag_untouched(api_client, project):
    experiment = stopped(project)
    _, flag_before = stored(experiment)

    response = api_client.post(action_url(experiment, "archive"))

    assert response.status_code == 200, response.json()
    assert response.json()["archived"] is True
    experiment.refresh_from_db()
    assert experiment.archived is True
    assert stored(experiment)[1] == flag_before
    default_list = api_client.get(experiments_url(project)).json()["results"]
    archived_list = api_client.get(experiments_url(project), {"archived": "true"}).json()["results"]
    assert [item["id"] for item in default_list] == []
    assert [item["id"] for item in archived_list] == [experiment.pk]


def test_archive_with_disable_feature_flag_deactivates_the_flag(api_client, project):
    experiment = stopped(project)
    flag_before = flag_of(experiment)

    response = api_client.post(action_url(experiment, "archive"), {"disable_feature_flag": True}, format="json")

    assert response.status_code == 200, response.json()
    flag = flag_of(experiment)
    assert flag.active is False
    assert flag.version == flag_before.version + 1
    assert flag.filters == flag_before.filters
    assert response.json()["feature_flag"]["active"] is False


def test_unarchive_shows_the_experiment_again_and_leaves_the_flag_untouched(api_client, project):
    experiment = archived(project)
    _, flag_before = stored(experiment)

    response = api_client.post(action_url(experiment, "unarchive"))

    assert response.status_code == 200, response.json()
    assert response.json()["archived"] is False
    assert response.json()["status"] == "stopped"
    assert stored(experiment)[1] == flag_before
    assert [item["id"] for item in api_client.get(experiments_url(project)).json()["results"]] == [experiment.pk]


# --- status everywhere ------------------------------------------------------------------------------------------


def test_status_in_the_serializer_and_the_list_filter_agree_through_the_lifecycle(api_client, project):
    experiment = draft(project)
    detail_url = f"{experiments_url(project)}{experiment.pk}/"

    def assert_status(expected: str) -> None:
        assert api_client.get(detail_url).json()["status"] == expected
        for status in ("draft", "running", "paused", "stopped"):
            listed = api_client.get(experiments_url(project), {"status": status}).json()["results"]
            assert [item["id"] for item in listed] == ([experiment.pk] if status == expected else []), status
            assert all(item["status"] == status for item in listed)

    assert_status("draft")
    for action, expected in [
        ("launch", "running"),
        ("pause", "paused"),
        ("resume", "running"),
        ("pause", "paused"),
        ("end", "stopped"),
        ("reset", "draft"),
    ]:
        response = api_client.post(action_url(experiment, action))
        assert response.status_code == 200, (action, response.json())
        assert response.json()["status"] == expected
        assert_status(expected)


def test_complete_is_an_alias_of_stopped_in_the_list_filter(api_client, project):
    experiment = stopped(project)
    running(project)

    listed = api_client.get(experiments_url(project), {"status": "complete"}).json()["results"]

    assert [item["id"] for item in listed] == [experiment.pk]


# --- scopes -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "action", "body"),
    [
        ("draft", "launch", {}),
        ("running", "end", {}),
        ("running", "pause", {}),
        ("paused", "resume", {}),
        ("running", "reset", {}),
        ("running", "ship_variant", {"variant_key": "test"}),
        ("stopped", "archive", {}),
        ("archived", "unarchive", {}),
        ("stopped", "copy_to_project", {"target_project_id": "sibling"}),
    ],
)
def test_a_read_only_key_cannot_run_any_action(project, sibling, user, make_client, state, action, body):
    experiment = STATES[state](project)
    body = {key: sibling.pk if value == "sibling" else value for key, value in body.items()}
    before = stored(experiment)

    response = make_client(user, scopes=["experiment:read"]).post(action_url(experiment, action), body, format="json")

    assert response.status_code == 403
    assert response.json() == missing_scope("experiment:write")
    assert stored(experiment) == before
    assert Experiment.objects.count() == 1
    assert not ExperimentActivity.objects.exists()


@pytest.mark.parametrize("scopes", [["experiment:write"], ["experiment:write", "feature_flag:read"]])
def test_archive_disabling_the_flag_needs_feature_flag_write(project, user, make_client, scopes):
    experiment = stopped(project)
    before = stored(experiment)

    response = make_client(user, scopes=scopes).post(
        action_url(experiment, "archive"), {"disable_feature_flag": True}, format="json"
    )

    assert response.status_code == 403
    assert response.json() == missing_scope("feature_flag:write")
    assert stored(experiment) == before
    assert not ExperimentActivity.objects.exists()


def test_archive_disabling_the_flag_with_both_write_scopes(project, user, make_client):
    experiment = stopped(project)

    response = make_client(user, scopes=["experiment:write", "feature_flag:write"]).post(
        action_url(experiment, "archive"), {"disable_feature_flag": True}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert flag_of(experiment).active is False


def test_archive_keeping_the_flag_needs_only_experiment_write(project, user, make_client):
    experiment = stopped(project)
    _, flag_before = stored(experiment)

    response = make_client(user, scopes=["experiment:write"]).post(action_url(experiment, "archive"))

    assert response.status_code == 200, response.json()
    assert Experiment.objects.get(pk=experiment.pk).archived is True
    assert stored(experiment)[1] == flag_before


# --- copy_to_project --------------------------------------------------------------------------------------------


def _launched_source(api_client, project) -> Experiment:
    created = api_client.post(
        experiments_url(project),
        {
            "name": "Checkout",
            "description": "Three-way checkout test",
            "feature_flag_key": "checkout",
            "parameters": {"feature_flag_variants": CONTROL_TEST_THIRD},
            "metrics": [mean_metric(uuid="primary-1")],
            "stats_config": {"method": "frequentist"},
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    experiment = Experiment.objects.get(pk=created.json()["id"])
    assert api_client.post(action_url(experiment, "launch")).status_code == 200
    experiment.refresh_from_db()
    return experiment


def test_copy_to_project_creates_a_draft_and_its_flag_in_the_target(api_client, project, sibling, user):
    source = _launched_source(api_client, project)
    source_before = stored(source)

    response = api_client.post(action_url(source, "copy_to_project"), {"target_project_id": sibling.pk}, format="json")

    assert response.status_code == 201, response.json()
    copy = Experiment.objects.get(project=sibling)
    flag = copy.feature_flag
    assert flag.project_id == sibling.pk
    assert flag.pk != source.feature_flag_id
    assert (flag.key, flag.active, flag.variants) == ("checkout", False, CONTROL_TEST_THIRD)
    assert (copy.name, copy.description, copy.start_date, copy.end_date) == (
        "Checkout",
        "Three-way checkout test",
        None,
        None,
    )
    assert copy.created_by == user
    assert copy.stats_config == {"method": "frequentist"}
    assert [metric["uuid"] for metric in copy.metrics] == ["primary-1"]
    assert copy.metrics[0]["fingerprint"] == experiment_metric_fingerprint(copy, copy.metrics[0])
    assert copy.metrics[0]["fingerprint"] != source.metrics[0]["fingerprint"]  # a draft has no start date
    body = response.json()
    assert body["id"] == copy.pk
    assert body["status"] == "draft"
    assert body["feature_flag"]["team_id"] == sibling.pk
    assert stored(source) == source_before


def test_copy_to_project_with_a_new_key_and_name(api_client, project, sibling):
    source = stopped(project)

    response = api_client.post(
        action_url(source, "copy_to_project"),
        {"target_project_id": sibling.pk, "feature_flag_key": "checkout-eu", "name": "Checkout EU"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    copy = Experiment.objects.get(project=sibling)
    assert (copy.name, copy.feature_flag.key, copy.feature_flag.project_id) == (
        "Checkout EU",
        "checkout-eu",
        sibling.pk,
    )
    assert (copy.conclusion, copy.archived) == (None, False)


def test_copy_to_project_accepts_target_team_id(api_client, project, sibling):
    source = stopped(project)

    response = api_client.post(action_url(source, "copy_to_project"), {"target_team_id": sibling.pk}, format="json")

    assert response.status_code == 201, response.json()
    assert Experiment.objects.filter(project=sibling).count() == 1


def test_copy_to_project_links_an_eligible_flag_the_target_already_has(api_client, project, sibling):
    source = stopped(project)
    existing = FeatureFlagFactory(project=sibling, key=source.feature_flag.key)

    response = api_client.post(action_url(source, "copy_to_project"), {"target_project_id": sibling.pk}, format="json")

    assert response.status_code == 201, response.json()
    assert Experiment.objects.get(project=sibling).feature_flag_id == existing.pk
    assert FeatureFlag.objects.filter(project=sibling).count() == 1


def test_copy_to_project_refuses_an_ineligible_flag_in_the_target_and_creates_nothing(api_client, project, sibling):
    source = stopped(project)
    FeatureFlagFactory(project=sibling, key=source.feature_flag.key, filters={"groups": []})

    response = api_client.post(action_url(source, "copy_to_project"), {"target_project_id": sibling.pk}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error(messages.FLAG_NOT_ELIGIBLE)
    assert not Experiment.objects.filter(project=sibling).exists()
    assert not ExperimentActivity.objects.exists()


@pytest.mark.parametrize("target", ["other_organization", "not_a_member", "unknown"])
def test_copy_to_project_refuses_a_target_the_user_cannot_write_to(api_client, project, user, target):
    if target == "other_organization":
        target_project = ProjectFactory()
        member_of(target_project, user)  # a member, but of another organization
        target_id = target_project.pk
    elif target == "not_a_member":
        target_id = ProjectFactory(organization=project.organization).pk
    else:
        target_id = ProjectFactory().pk + 1000
    source = stopped(project)
    flags_before = FeatureFlag.objects.count()

    response = api_client.post(action_url(source, "copy_to_project"), {"target_project_id": target_id}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error(
        messages.TARGET_PROJECT_INVALID.format(project_id=target_id), "target_project_id"
    )
    assert Experiment.objects.count() == 1
    assert FeatureFlag.objects.count() == flags_before
    assert not ExperimentActivity.objects.exists()


def test_copy_to_project_needs_a_target(api_client, project):
    source = stopped(project)

    response = api_client.post(action_url(source, "copy_to_project"), {"name": "Copy"}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error(messages.TARGET_PROJECT_REQUIRED, "target_project_id")
    assert Experiment.objects.count() == 1


def test_copy_to_project_refuses_a_target_outside_the_keys_projects(project, sibling, user, make_client):
    """A key limited to some projects cannot write into another one through the copy either."""
    source = stopped(project)
    client = make_client(user, scoped_projects=[project.pk])

    response = client.post(action_url(source, "copy_to_project"), {"target_project_id": sibling.pk}, format="json")

    assert response.status_code == 403
    assert response.json() == project_not_allowed_for_key(sibling.pk)
    assert not Experiment.objects.filter(project=sibling).exists()


# --- concurrency ------------------------------------------------------------------------------------------------


def _in_thread(target) -> threading.Thread:
    def run():
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_for_sessions_waiting_on_a_lock(count: int) -> None:
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
            time.sleep(0.02)
    raise AssertionError(f"Fewer than {count} database sessions ever waited on a lock.")


def _hold_lock_on(queryset, *, then=None) -> tuple[threading.Thread, threading.Event]:
    """Lock the rows of `queryset` in another transaction (and run `then` inside it) until the event is set."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            list(queryset.select_for_update())
            if then is not None:
                then()
            locked.set()
            release.wait(timeout=10)

    thread = _in_thread(hold)
    assert locked.wait(timeout=10)
    return thread, release


@pytest.mark.django_db(transaction=True)
def test_two_launches_at_once_launch_once(make_client):
    """Both requests read the draft while another transaction holds its row, so both pass the unlocked lookup
    and queue on the row lock: the first launches, the second then sees the start date and is refused."""
    project = ProjectFactory()
    clients = [make_client(member_of(project)) for _ in range(2)]
    experiment = draft(project)
    holder, release = _hold_lock_on(Experiment.objects.filter(pk=experiment.pk))
    responses = []

    threads = [
        _in_thread(lambda client=client: responses.append(client.post(action_url(experiment, "launch"))))
        for client in clients
    ]
    _wait_for_sessions_waiting_on_a_lock(2)
    release.set()
    for thread in [holder, *threads]:
        thread.join()

    assert sorted(response.status_code for response in responses) == [200, 400]
    launched = next(response.json() for response in responses if response.status_code == 200)
    refused = next(response.json() for response in responses if response.status_code == 400)
    assert refused == validation_error(messages.ALREADY_LAUNCHED)
    experiment.refresh_from_db()
    assert launched["start_date"] == as_api_datetime(experiment.start_date)
    assert ExperimentActivity.objects.filter(experiment=experiment, activity="launched").count() == 1
    flag = flag_of(experiment)
    assert (flag.active, flag.version) == (True, 2)


@pytest.mark.django_db(transaction=True)
def test_ship_variant_refuses_a_flag_changed_while_it_was_shipping(make_client):
    """Another writer changes the flag after ship_variant read it and before its write: the write is refused
    with 409 instead of overwriting that change, and the experiment is not ended."""
    project = ProjectFactory()
    user = member_of(project)
    experiment = running(project)
    flag = flag_of(experiment)
    payloads = {"test": '{"price": 9}'}

    def change_payloads():
        feature_flag_update(flag=flag, user=user, changes={"filters": {**flag.filters, "payloads": payloads}})

    holder, release = _hold_lock_on(FeatureFlag.objects.filter(pk=flag.pk), then=change_payloads)
    responses = []
    shipper = _in_thread(
        lambda: responses.append(
            make_client(user).post(action_url(experiment, "ship_variant"), {"variant_key": "test"}, format="json")
        )
    )
    _wait_for_sessions_waiting_on_a_lock(1)  # ship_variant read version 1 and waits to write
    release.set()
    holder.join()
    shipper.join()

    (response,) = responses
    assert response.status_code == 409
    assert response.json() == error_body(
        type="invalid_request",
        code="conflict",
        detail=flag_messages.FLAG_VERSION_CONFLICT.format(current=2, expected=1),
    )
    flag.refresh_from_db()
    assert flag.version == 2
    assert flag.filters["payloads"] == payloads
    assert [variant["rollout_percentage"] for variant in flag.variants] == [50, 50]
    experiment.refresh_from_db()
    assert experiment.end_date is None
    assert not ExperimentActivity.objects.exists()


def test_ship_variant_with_a_stale_experiment_keeps_a_flag_change_made_since(api_client, project, user):
    """The service re-reads the experiment and its flag under lock, so a change made through the flags API
    after the caller loaded the experiment is kept alongside the shipped split."""
    experiment = running(project)
    stale = Experiment.objects.select_related("feature_flag").get(pk=experiment.pk)
    payloads = {"test": '{"price": 9}'}
    patched = api_client.patch(
        f"/api/projects/{project.pk}/feature_flags/{experiment.feature_flag_id}/",
        {"filters": {**stale.feature_flag.filters, "payloads": payloads}},
        format="json",
    )
    assert patched.status_code == 200, patched.json()

    shipped = experiment_ship_variant(experiment=stale, user=user, variant_key="test")

    flag = flag_of(experiment)
    assert shipped.feature_flag.version == flag.version == 3
    assert flag.filters["payloads"] == payloads
    assert [variant["rollout_percentage"] for variant in flag.variants] == [0, 100]


def test_an_unrelated_user_cannot_act_on_the_project(project, make_client):
    experiment = running(project)
    outsider = UserFactory()
    before = stored(experiment)

    response = make_client(outsider).post(action_url(experiment, "end"))

    assert response.status_code == 403
    assert response.json() == NOT_A_MEMBER
    assert stored(experiment) == before
