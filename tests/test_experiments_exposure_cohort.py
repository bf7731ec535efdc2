"""POST /experiments/:id/create_exposure_cohort_for_experiment/ (§4.8): the cohort's filter and the four 400s."""

import datetime as dt

import pytest

from experiments import messages
from experiments.models import Experiment
from flags.models import Cohort
from tests.factories import ExperimentFactory, FeatureFlagFactory, ProjectFactory, member_of
from tests.helpers import NOT_A_MEMBER, NOT_FOUND, missing_scope, validation_error

START = dt.datetime(2025, 1, 10, 12, 0, tzinfo=dt.UTC)


def cohort_url(project, experiment_id) -> str:
    return f"/api/projects/{project.id}/experiments/{experiment_id}/create_exposure_cohort_for_experiment/"


def launched(project, **fields) -> Experiment:
    flag = FeatureFlagFactory(project=project, key="checkout")
    return ExperimentFactory(project=project, name="Checkout", feature_flag=flag, start_date=START, **fields)


def behavioural_filter(key, event_type: str, event_filters: list[dict]) -> dict:
    return {
        "key": key,
        "type": "behavioral",
        "value": "performed_event",
        "negation": False,
        "event_type": event_type,
        "event_filters": event_filters,
        "explicit_datetime": "2025-01-10T12:00:00+00:00",
    }


def cohort_filter_of(response) -> dict:
    [outer] = response.json()["cohort"]["filters"]["properties"]["values"]
    [behavioural] = outer["values"]
    return behavioural


def test_the_cohort_holds_users_who_saw_the_flag_since_launch(api_client, project, user):
    experiment = launched(project)

    response = api_client.post(cohort_url(project, experiment.id))

    assert response.status_code == 201, response.json()
    cohort = Cohort.objects.get(project=project)
    assert response.json() == {
        "cohort": {
            "id": cohort.id,
            "name": 'Users exposed to experiment "Checkout"',
            "description": "",
            "filters": {
                "properties": {
                    "type": "OR",
                    "values": [
                        {
                            "type": "OR",
                            "values": [
                                behavioural_filter(
                                    "$feature_flag_called",
                                    "events",
                                    [
                                        {
                                            "key": "$feature_flag",
                                            "value": ["checkout"],
                                            "operator": "exact",
                                            "type": "event",
                                        }
                                    ],
                                )
                            ],
                        }
                    ],
                }
            },
            "is_static": False,
            "is_calculating": True,
            "deleted": False,
            "count": None,
            "last_calculation": None,
            "errors_calculating": 0,
            "created_by": response.json()["cohort"]["created_by"],
            "created_at": cohort.created_at.isoformat().replace("+00:00", "Z"),
            "updated_at": cohort.updated_at.isoformat().replace("+00:00", "Z"),
        }
    }
    assert response.json()["cohort"]["created_by"]["id"] == user.id
    experiment.refresh_from_db()
    assert experiment.exposure_cohort == cohort
    assert api_client.get(f"/api/projects/{project.id}/experiments/{experiment.id}/").json()["exposure_cohort"] == (
        cohort.id
    )


@pytest.mark.parametrize(
    ("exposure_criteria", "parameters", "expected"),
    [
        # exposure_criteria.exposure_config is used (PostHog ignores it, §10.13: we fix that).
        (
            {
                "exposure_config": {
                    "kind": "ExperimentEventExposureConfig",
                    "event": "checkout viewed",
                    "properties": [{"key": "plan", "value": ["pro"], "operator": "exact", "type": "event"}],
                }
            },
            {"custom_exposure_filter": {"events": [{"id": "ignored", "type": "events"}]}},
            behavioural_filter(
                "checkout viewed", "events", [{"key": "plan", "value": ["pro"], "operator": "exact", "type": "event"}]
            ),
        ),
        (
            {"exposure_config": {"event": "checkout viewed"}},
            None,
            behavioural_filter("checkout viewed", "events", []),
        ),
        # Else the legacy custom_exposure_filter: its first entity, keeping only event-level property filters.
        (
            {"filterTestAccounts": True},
            {
                "custom_exposure_filter": {
                    "events": [
                        {
                            "id": "$pageview",
                            "type": "events",
                            "properties": [
                                {"key": "$browser", "value": "Chrome", "type": "event"},
                                {"key": "email", "value": "a@b.c", "type": "person"},
                                {"key": "beta", "type": "feature"},
                                {"key": "$os", "value": "Mac"},
                            ],
                        },
                        {"id": "second", "type": "events"},
                    ]
                }
            },
            behavioural_filter(
                "$pageview",
                "events",
                [
                    {"key": "$browser", "value": "Chrome", "type": "event"},
                    {"key": "beta", "type": "feature"},
                    {"key": "$os", "value": "Mac", "type": "event"},
                ],
            ),
        ),
    ],
)
def test_the_exposure_definition_decides_the_cohort(api_client, project, exposure_criteria, parameters, expected):
    experiment = launched(project, exposure_criteria=exposure_criteria, parameters=parameters)

    response = api_client.post(cohort_url(project, experiment.id))

    assert response.status_code == 201, response.json()
    assert cohort_filter_of(response) == expected


def _flag_deleted(project) -> Experiment:
    experiment = launched(project)
    experiment.feature_flag.deleted = True
    experiment.feature_flag.save()
    return experiment


def _draft(project) -> Experiment:
    return ExperimentFactory(project=project)


def _with_cohort(project) -> Experiment:
    cohort = Cohort.objects.create(project=project, name="Existing")
    return launched(project, exposure_cohort=cohort)


def _bad_action(project) -> Experiment:
    return launched(project, parameters={"custom_exposure_filter": {"actions": [{"id": "signup", "type": "actions"}]}})


def _action_id(project) -> Experiment:
    """This server has no actions, so any action id is invalid."""
    return launched(project, parameters={"custom_exposure_filter": {"actions": [{"id": "7", "type": "actions"}]}})


def _actions_node(project) -> Experiment:
    return launched(project, exposure_criteria={"exposure_config": {"kind": "ActionsNode", "id": 12}})


@pytest.mark.parametrize(
    ("make_experiment", "detail"),
    [
        (_flag_deleted, messages.EXPOSURE_COHORT_NO_FLAG),
        (_draft, messages.EXPOSURE_COHORT_NOT_STARTED),
        (_with_cohort, messages.EXPOSURE_COHORT_EXISTS),
        (_bad_action, messages.EXPOSURE_COHORT_INVALID_ACTION),
        (_action_id, messages.EXPOSURE_COHORT_INVALID_ACTION),
        (_actions_node, messages.EXPOSURE_COHORT_INVALID_ACTION),
    ],
)
def test_the_four_refusals(api_client, project, make_experiment, detail):
    experiment = make_experiment(project)
    cohorts_before = Cohort.objects.count()

    response = api_client.post(cohort_url(project, experiment.id))

    assert response.status_code == 400
    assert response.json() == validation_error(detail)
    assert Cohort.objects.count() == cohorts_before
    assert Experiment.objects.get(pk=experiment.pk).exposure_cohort_id == experiment.exposure_cohort_id


def test_a_second_cohort_is_refused(api_client, project):
    experiment = launched(project)
    assert api_client.post(cohort_url(project, experiment.id)).status_code == 201

    response = api_client.post(cohort_url(project, experiment.id))

    assert response.status_code == 400
    assert response.json() == validation_error(messages.EXPOSURE_COHORT_EXISTS)
    assert Cohort.objects.count() == 1


def test_a_read_only_key_cannot_create_the_cohort(make_client, user, project):
    experiment = launched(project)

    response = make_client(user, scopes=["experiment:read"]).post(cohort_url(project, experiment.id))

    assert response.status_code == 403
    assert response.json() == missing_scope("experiment:write")
    assert not Cohort.objects.exists()


def test_a_user_of_another_organization_cannot_create_the_cohort(make_client, project):
    experiment = launched(project)
    outsider_project = ProjectFactory()
    outsider = make_client(member_of(outsider_project))

    refused = outsider.post(cohort_url(project, experiment.id))
    through_own_project = outsider.post(cohort_url(outsider_project, experiment.id))

    assert refused.status_code == 403
    assert refused.json() == NOT_A_MEMBER
    assert through_own_project.json() == NOT_FOUND
    assert not Cohort.objects.exists()


def test_a_deleted_experiment_has_no_cohort_action(api_client, project):
    experiment = launched(project, deleted=True)

    response = api_client.post(cohort_url(project, experiment.id))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
