"""End to end with PostHog's official Python SDK against a live server: flag evaluation (remote and local) and
event capture, every event stored exactly once."""

from collections import Counter

import posthog.request
import pytest
from posthog import Posthog

from flags.evaluation import flag_evaluate
from tests.event_stores import stored_events
from tests.factories import FeatureFlagFactory, ProjectFactory, api_key_for, member_of

FLAG_KEY = "checkout-experiment"
USERS = [f"sdk-user-{number}" for number in range(300)]
ROLLOUT_PERCENTAGE = 50


def experiment_filters(**extra) -> dict:
    return {
        "groups": [{"properties": [], "rollout_percentage": ROLLOUT_PERCENTAGE}],
        "multivariate": {
            "variants": [
                {"key": "control", "rollout_percentage": 50},
                {"key": "test", "rollout_percentage": 50},
            ]
        },
        **extra,
    }


@pytest.fixture(autouse=True)
def _fresh_connection_per_request(monkeypatch):
    """What posthog.request.disable_connection_reuse() does, undone after the test. Django's test server answers
    a reused keep-alive connection slowly (Nagle's algorithm against delayed ACKs, ~150 ms a request), and pooled
    connections would keep its request threads, and their database connections, alive past the test."""
    monkeypatch.setattr(posthog.request, "_pooling_enabled", False)


def sdk_client(live_server, project, **options) -> Posthog:
    """No retries (a failure must fail the test) and gzip on, as production senders use it."""
    return Posthog(
        project.api_token,
        # An IP address, so every request does not first try (and fail) IPv6 for "localhost".
        host=live_server.url.replace("localhost", "127.0.0.1"),
        max_retries=0,
        gzip=True,
        flush_at=100,
        flush_interval=0.2,
        feature_flags_request_timeout_seconds=10,
        feature_flags_request_max_retries=0,
        **options,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("event_store")
def test_sdk_gets_variants_and_every_captured_event_is_stored_once(live_server):
    project = ProjectFactory()
    flag = FeatureFlagFactory(project=project, key=FLAG_KEY, filters=experiment_filters())
    client = sdk_client(live_server, project)
    try:
        values, purchase_uuids = {}, set()
        for distinct_id in USERS:
            flags = client.evaluate_flags(distinct_id)
            values[distinct_id] = flags.get_flag(FLAG_KEY)  # sends $feature_flag_called
            purchase_uuids.add(
                client.capture("purchase", distinct_id=distinct_id, properties={"amount": 10}, flags=flags)
            )
        client.flush()
    finally:
        client.shutdown()

    split = Counter(values.values())
    assert set(split) == {"control", "test", False}
    enabled = split["control"] + split["test"]
    assert abs(enabled / len(USERS) - ROLLOUT_PERCENTAGE / 100) < 0.08
    assert abs(split["control"] / enabled - 0.5) < 0.1
    flag_dict = {"key": flag.key, "filters": flag.filters}
    assert values == {
        distinct_id: flag_evaluate(flag_dict, distinct_id=distinct_id, person_properties={}).value
        for distinct_id in USERS
    }

    rows = stored_events(project)
    assert len({row["uuid"] for row in rows}) == len(rows)
    assert Counter((row["event"], row["distinct_id"]) for row in rows) == Counter(
        {("purchase", distinct_id): 1 for distinct_id in USERS}
        | {("$feature_flag_called", distinct_id): 1 for distinct_id in USERS}
    )
    assert {str(row["uuid"]) for row in rows if row["event"] == "purchase"} == purchase_uuids
    for row in rows:
        assert row["properties"][f"$feature/{FLAG_KEY}"] == values[row["distinct_id"]]
        if row["event"] == "$feature_flag_called":
            assert row["properties"]["$feature_flag"] == FLAG_KEY
            assert row["properties"]["$feature_flag_response"] == values[row["distinct_id"]]


@pytest.mark.django_db(transaction=True)
def test_sdk_local_evaluation_agrees_with_the_server_including_holdouts(live_server):
    """The first test shows the server's /flags answers are flags.evaluation's; here the SDK, evaluating the
    definitions it downloaded, must give the same answers without asking the server."""
    project = ProjectFactory()
    personal_api_key = api_key_for(member_of(project), ["feature_flag:read"])
    flags = [
        FeatureFlagFactory(project=project, key=FLAG_KEY, filters=experiment_filters()),
        FeatureFlagFactory(
            project=project,
            key="held-out-experiment",
            filters=experiment_filters(
                holdout_groups=[{"properties": [], "rollout_percentage": 20, "variant": "holdout-42"}]
            ),
        ),
    ]
    client = sdk_client(live_server, project, secret_key=personal_api_key, poll_interval=300)
    try:
        client.load_feature_flags()
        local_values = {}
        for user in USERS:
            evaluated = client.evaluate_flags(user, only_evaluate_locally=True)
            local_values[user] = {
                flag.key: evaluated.get_flag(flag.key, send_feature_flag_events=False) for flag in flags
            }
    finally:
        client.shutdown()

    assert local_values == {
        user: {
            flag.key: flag_evaluate(
                {"key": flag.key, "filters": flag.filters}, distinct_id=user, person_properties={}
            ).value
            for flag in flags
        }
        for user in USERS
    }
    held_out = sum(values["held-out-experiment"] == "holdout-42" for values in local_values.values())
    assert 0.1 < held_out / len(USERS) < 0.3
