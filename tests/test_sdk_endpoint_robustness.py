"""Inputs that used to crash the SDK-facing endpoints: lone surrogates, odd tokens, huge numbers, odd versions."""

import json

import pytest

from events.models import Event
from tests.factories import FeatureFlagFactory, ProjectFactory

pytestmark = pytest.mark.django_db

REPLACEMENT = "\ufffd"


@pytest.fixture
def project():
    return ProjectFactory(seen_events=[])


def post(client, path, body: str):
    return client.post(path, body, content_type="application/json")


def test_lone_surrogates_in_an_event_are_replaced_not_fatal(client, project):
    # json.dumps escapes the surrogate as \ud800, which Python's JSON parser turns back into a lone surrogate.
    body = json.dumps(
        {
            "api_key": project.api_token,
            "batch": [
                {"event": "sign\ud800up", "distinct_id": "user-\udfff", "properties": {"note": "a\ud800b"}},
                {"event": "ok", "distinct_id": "user-2"},
            ],
        }
    )

    response = post(client, "/batch/", body)

    assert response.status_code == 200, response.content
    stored = {event.event: event for event in Event.objects.filter(project=project)}
    assert set(stored) == {f"sign{REPLACEMENT}up", "ok"}
    assert stored[f"sign{REPLACEMENT}up"].distinct_id == f"user-{REPLACEMENT}"
    assert stored[f"sign{REPLACEMENT}up"].properties == {"note": f"a{REPLACEMENT}b"}


@pytest.mark.parametrize("token", ["phc_\u0000abc", "phc_\ud800", "phc_ü"])
@pytest.mark.parametrize("path", ["/batch/", "/flags/?v=2", "/decide/?v=3"])
def test_a_token_no_project_could_have_is_a_401(client, token, path):
    body = json.dumps(
        {"api_key": token, "token": token, "distinct_id": "a", "batch": [{"event": "e", "distinct_id": "a"}]}
    )

    response = post(client, path, body)

    assert response.status_code == 401
    assert response.json()["type"] == "authentication_error"


def test_flags_with_a_lone_surrogate_distinct_id_bucket_like_capture(client, project):
    FeatureFlagFactory(project=project, key="checkout")
    body = json.dumps({"token": project.api_token, "distinct_id": "user-\ud800"})
    expected = post(
        client, "/flags/?v=2", json.dumps({"token": project.api_token, "distinct_id": f"user-{REPLACEMENT}"})
    )

    response = post(client, "/flags/?v=2", body)

    assert response.status_code == 200
    assert response.json()["featureFlags"] == expected.json()["featureFlags"]


def test_a_huge_person_property_compared_with_gt_does_not_match(client, project):
    FeatureFlagFactory(
        project=project,
        key="big-spenders",
        filters={
            "groups": [
                {
                    "properties": [{"key": "spent", "type": "person", "operator": "gt", "value": 100}],
                    "rollout_percentage": 100,
                }
            ]
        },
    )
    huge = "1" + "0" * 400  # a JSON integer no float can hold
    body = f'{{"token": "{project.api_token}", "distinct_id": "a", "person_properties": {{"spent": {huge}}}}}'

    response = post(client, "/flags/?v=2", body)

    assert response.status_code == 200
    assert response.json()["featureFlags"]["big-spenders"] is False


def test_an_unusual_version_parameter_falls_back_to_v1(client, project):
    response = post(client, "/flags/?v=\u00b2", json.dumps({"token": project.api_token, "distinct_id": "a"}))

    assert response.status_code == 200
    assert "flags" not in response.json()


def test_a_timestamp_at_the_edge_of_the_calendar_is_rejected_with_its_index(client, project):
    body = json.dumps(
        {
            "api_key": project.api_token,
            "batch": [
                {"event": "old", "distinct_id": "a", "timestamp": "0001-01-01T00:30:00+01:00"},
                {"event": "ok", "distinct_id": "a"},
            ],
        }
    )

    response = post(client, "/batch/", body)

    assert response.status_code == 200
    assert response.json()["rejected"][0]["index"] == 0
    assert list(Event.objects.values_list("event", flat=True)) == ["ok"]
