"""GET /experiments/requires_flag_implementation/: warns until events carry `$feature/…` properties (§4.11)."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from events.models import Event
from experiments import messages
from tests.factories import ProjectFactory, member_of
from tests.helpers import missing_scope

pytestmark = pytest.mark.django_db


def _url(project, events=None) -> str:
    url = f"/api/projects/{project.id}/experiments/requires_flag_implementation/"
    return url if events is None else f"{url}?events={json.dumps(events)}"


def _event(project, name, properties, days_ago=1):
    return Event.objects.create(
        project=project,
        event=name,
        distinct_id="user-1",
        timestamp=timezone.now() - dt.timedelta(days=days_ago),
        properties=properties,
    )


def test_true_when_no_event_carries_a_feature_property(api_client, project):
    _event(project, "$pageview", {"$current_url": "/"})

    response = api_client.get(_url(project, [{"id": "$pageview", "type": "events"}]))

    assert response.status_code == 200
    assert response.json() == {"result": True}


def test_false_when_a_recent_event_carries_a_feature_property(api_client, project):
    _event(project, "$pageview", {"$feature/checkout": "test"})

    response = api_client.get(_url(project, [{"id": "$pageview", "type": "events"}]))

    assert response.json() == {"result": False}


def test_events_older_than_seven_days_are_ignored(api_client, project):
    _event(project, "$pageview", {"$feature/checkout": "test"}, days_ago=8)

    assert api_client.get(_url(project, [{"id": "$pageview", "type": "events"}])).json() == {"result": True}


def test_other_events_and_other_projects_do_not_count(api_client, project):
    _event(project, "purchase", {"$feature/checkout": "test"})
    _event(ProjectFactory(), "$pageview", {"$feature/checkout": "test"})

    assert api_client.get(_url(project, [{"id": "$pageview", "type": "events"}])).json() == {"result": True}


def test_no_events_given_means_true(api_client, project):
    assert api_client.get(_url(project)).json() == {"result": True}


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("not-json", "Value must be valid JSON."),
        (json.dumps({"id": "$pageview"}), messages.ENTITY_LIST_INVALID),
        (json.dumps(["$pageview"]), messages.ENTITY_LIST_INVALID),
        (json.dumps([{"id": f"e{n}"} for n in range(51)]), messages.ENTITY_LIST_TOO_LONG.format(limit=50)),
    ],
)
def test_malformed_events_parameter_is_a_400(api_client, project, raw, detail):
    response = api_client.get(_url(project), {"events": raw})

    assert response.status_code == 400
    assert response.json() == {"type": "validation_error", "code": "invalid_input", "detail": detail, "attr": "events"}


def test_needs_experiment_read_and_project_membership(make_client, project, user):
    flag_only = make_client(user, scopes=["feature_flag:read"])
    assert flag_only.get(_url(project)).json() == missing_scope("experiment:read")
    outsider = make_client(member_of(ProjectFactory()))
    assert outsider.get(_url(project)).status_code == 403
