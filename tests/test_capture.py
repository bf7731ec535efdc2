"""Event capture in PostHog's format: body encodings, token auth, timestamp correction, dedup, bulk insert, bad input."""

import base64
import datetime as dt
import gzip
import json
import uuid
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.utils import timezone

from events import messages
from events.models import Event, EventDefinition
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(db):
    """A project that has seen no event yet, so event definitions start empty."""
    return ProjectFactory(seen_events=[])


CAPTURE_PATHS = ["/batch/", "/capture/", "/e/", "/i/v0/e/", "/batch", "/e"]


def make_event(name="$pageview", distinct_id="user-1", **extra) -> dict:
    return {
        "event": name,
        "distinct_id": distinct_id,
        "uuid": str(uuid.uuid4()),
        "timestamp": "2026-01-15T10:00:00+00:00",
        "properties": {"$current_url": "/"},
        **extra,
    }


def post_json(client, body, path="/batch/", **headers):
    return client.post(path, json.dumps(body), content_type="application/json", headers=headers)


def stored(project):
    return Event.objects.filter(project=project)


def rejected_body(detail, index=0):
    return {"type": "validation_error", "code": "invalid_event", "detail": detail, "attr": f"batch__{index}"}


@pytest.mark.parametrize("path", CAPTURE_PATHS)
def test_batch_is_stored(client, project, path):
    events = [make_event(distinct_id=f"user-{n}", properties={"n": n}) for n in range(3)]

    response = post_json(client, {"api_key": project.api_token, "batch": events}, path=path)

    assert response.status_code == 200
    assert response.json() == {"status": 1}
    rows = {str(row.uuid): row for row in stored(project)}
    assert set(rows) == {event["uuid"] for event in events}
    first = rows[events[0]["uuid"]]
    assert (first.event, first.distinct_id, first.properties) == ("$pageview", "user-0", {"n": 0})
    assert first.timestamp == dt.datetime(2026, 1, 15, 10, tzinfo=dt.UTC)


def test_single_event_with_token_in_the_body(client, project):
    response = post_json(client, {"token": project.api_token, **make_event(name="signup")}, path="/capture/")

    assert response.status_code == 200
    assert list(stored(project).values_list("event", flat=True)) == ["signup"]


def test_posthog_js_form_body_with_base64_data_and_token_in_properties(client, project):
    events = [
        {
            "event": "$pageview",
            "uuid": str(uuid.uuid4()),
            "properties": {"token": project.api_token, "distinct_id": "js-1"},
        }
    ]
    data = base64.b64encode(json.dumps(events).encode()).decode()

    response = client.post(
        "/e/?ip=1&_=1700000000000", urlencode({"data": data}), content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200
    assert list(stored(project).values_list("distinct_id", flat=True)) == ["js-1"]


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/batch/", {"Content-Encoding": "gzip"}), ("/batch/?compression=gzip-js", {}), ("/e/?compression=gzip", {})],
)
def test_gzip_bodies(client, project, path, headers):
    body = gzip.compress(json.dumps({"api_key": project.api_token, "batch": [make_event()]}).encode())

    response = client.post(path, body, content_type="text/plain", headers=headers)

    assert response.status_code == 200
    assert stored(project).count() == 1


def test_timestamp_is_corrected_by_the_senders_clock_skew(client, project):
    # The sender's clock is one hour ahead: its timestamps are moved back by the hour (less network time).
    sender_now = timezone.now() + dt.timedelta(hours=1)
    event = make_event(timestamp=(sender_now - dt.timedelta(minutes=10)).isoformat())

    post_json(client, {"api_key": project.api_token, "sent_at": sender_now.isoformat(), "batch": [event]})

    expected = timezone.now() - dt.timedelta(minutes=10)
    assert abs(stored(project).get().timestamp - expected) < dt.timedelta(seconds=5)


def test_offset_wins_over_timestamp(client, project):
    event = make_event(offset=90_000)

    post_json(client, {"api_key": project.api_token, "batch": [event]})

    expected = timezone.now() - dt.timedelta(seconds=90)
    assert abs(stored(project).get().timestamp - expected) < dt.timedelta(seconds=5)


def test_event_without_timestamp_happened_now(client, project):
    event = make_event()
    del event["timestamp"]

    post_json(client, {"api_key": project.api_token, "batch": [event]})

    assert abs(stored(project).get().timestamp - timezone.now()) < dt.timedelta(seconds=5)


def test_event_definitions_track_first_and_last_seen(client, project):
    token = project.api_token
    post_json(client, {"api_key": token, "batch": [make_event(name="purchase", timestamp="2026-01-15T10:00:00Z")]})
    post_json(
        client,
        {
            "api_key": token,
            "batch": [
                make_event(name="purchase", timestamp="2026-01-10T08:00:00Z"),
                make_event(name="purchase", timestamp="2026-01-12T08:00:00Z"),
                make_event(name="$pageview", timestamp="2026-01-20T08:00:00Z"),
            ],
        },
    )
    post_json(client, {"api_key": token, "batch": [make_event(name="purchase", timestamp="2026-01-11T08:00:00Z")]})

    definitions = {d.name: (d.first_seen_at, d.last_seen_at) for d in EventDefinition.objects.filter(project=project)}
    assert definitions == {
        "purchase": (dt.datetime(2026, 1, 10, 8, tzinfo=dt.UTC), dt.datetime(2026, 1, 15, 10, tzinfo=dt.UTC)),
        "$pageview": (dt.datetime(2026, 1, 20, 8, tzinfo=dt.UTC), dt.datetime(2026, 1, 20, 8, tzinfo=dt.UTC)),
    }


# --- dedup -------------------------------------------------------------------------------------------------------


def test_a_resent_batch_is_stored_once(client, project):
    body = {"api_key": project.api_token, "batch": [make_event(distinct_id=f"u{n}") for n in range(5)]}

    first = post_json(client, body)
    second = post_json(client, body)

    assert first.status_code == second.status_code == 200
    assert stored(project).count() == 5


def test_a_resend_with_a_later_sent_at_is_stored_once(client, project):
    # A retry carries the same uuid and event timestamp but a new sent_at, so the corrected timestamps differ a bit.
    sent_at = timezone.now()
    event = make_event(timestamp=(sent_at - dt.timedelta(seconds=30)).isoformat())

    post_json(client, {"api_key": project.api_token, "sent_at": sent_at.isoformat(), "batch": [event]})
    retry_sent_at = sent_at + dt.timedelta(seconds=2, milliseconds=350)
    post_json(client, {"api_key": project.api_token, "sent_at": retry_sent_at.isoformat(), "batch": [event]})

    assert stored(project).count() == 1


def test_the_same_uuid_twice_in_one_batch_is_stored_once(client, project):
    event = make_event()

    response = post_json(client, {"api_key": project.api_token, "batch": [event, event]})

    assert response.status_code == 200
    assert stored(project).count() == 1


def test_the_same_uuid_in_another_project_is_another_event(client, project):
    other = ProjectFactory()
    event = make_event()

    post_json(client, {"api_key": project.api_token, "batch": [event]})
    post_json(client, {"api_key": other.api_token, "batch": [event]})

    assert stored(project).count() == stored(other).count() == 1


def test_a_batch_is_one_statement_whatever_its_size(client, project, django_assert_max_num_queries):
    post_json(client, {"api_key": project.api_token, "batch": [make_event()]})  # creates the month's partition
    batch = [make_event(distinct_id=f"user-{n}", name=f"event-{n % 7}") for n in range(1000)]

    # The partition lookup, the savepoint the person step is retried from (and its release), one read of the
    # batch's distinct ids, one statement inserting the new persons and their distinct ids, then one storing
    # events and definitions.
    with django_assert_max_num_queries(6) as captured:
        response = post_json(client, {"api_key": project.api_token, "batch": batch})

    assert response.status_code == 200
    writes = [query["sql"] for query in captured.captured_queries if "INSERT" in query["sql"]]
    assert len(writes) == 2
    assert "INSERT INTO persons_person " in writes[0] and "INSERT INTO persons_persondistinctid " in writes[0]
    assert "INSERT INTO events_event " in writes[1] and "INSERT INTO events_eventdefinition " in writes[1]
    assert stored(project).count() == 1001
    assert EventDefinition.objects.filter(project=project).count() == 1 + 7  # the warm-up $pageview and event-0…6


def test_events_land_in_their_months_partition(client, project):
    events = [make_event(timestamp="2025-07-31T23:59:59Z"), make_event(timestamp="2025-08-01T00:00:00Z")]

    post_json(client, {"api_key": project.api_token, "batch": events})

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM events_event WHERE project_id = %s ORDER BY timestamp", [project.pk]
        )
        assert [row[0] for row in cursor.fetchall()] == ["events_event_p202507", "events_event_p202508"]


def test_a_new_partition_takes_over_rows_of_its_month_from_the_default_partition(client, project):
    orm_written = Event.objects.create(
        project=project, event="legacy", distinct_id="u", timestamp=dt.datetime(2024, 3, 5, tzinfo=dt.UTC)
    )

    post_json(client, {"api_key": project.api_token, "batch": [make_event(timestamp="2024-03-20T00:00:00Z")]})

    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM events_event WHERE id = %s", [orm_written.id])
        assert cursor.fetchone()[0] == "events_event_p202403"
    assert stored(project).count() == 2


# --- bad input ---------------------------------------------------------------------------------------------------


def test_unknown_token_is_a_401(client):
    response = post_json(client, {"api_key": "phc_not_a_project", "batch": [make_event()]})

    assert response.status_code == 401
    assert response.json() == {
        "type": "authentication_error",
        "code": "authentication_failed",
        "detail": messages.TOKEN_INVALID,
        "attr": None,
    }


def test_missing_token_is_a_401(client):
    response = post_json(client, {"batch": [make_event()]})

    assert response.status_code == 401
    assert response.json() == {
        "type": "authentication_error",
        "code": "not_authenticated",
        "detail": messages.TOKEN_MISSING,
        "attr": None,
    }


def test_malformed_json_is_a_400(client, project):
    response = client.post("/batch/", b'{"api_key": "x", "batch": [', content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "type": "invalid_request",
        "code": "parse_error",
        "detail": messages.MALFORMED_JSON,
        "attr": None,
    }


def test_empty_body_is_a_400(client):
    response = client.post("/batch/", b"", content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "type": "invalid_request",
        "code": "parse_error",
        "detail": messages.EMPTY_BODY,
        "attr": None,
    }


def test_posthog_js_sent_at_query_value_corrects_timestamps(client, project):
    # posthog-js sends its clock as `_` (epoch milliseconds); this sender's clock is two hours behind.
    sender_now = timezone.now() - dt.timedelta(hours=2)
    event = make_event(
        timestamp=(sender_now - dt.timedelta(minutes=1)).isoformat(), properties={"token": project.api_token}
    )
    milliseconds = int(sender_now.timestamp() * 1000)

    client.post(f"/e/?_={milliseconds}", json.dumps([event]), content_type="text/plain")

    expected = timezone.now() - dt.timedelta(minutes=1)
    assert abs(stored(project).get().timestamp - expected) < dt.timedelta(seconds=5)


def test_truncated_gzip_is_a_400(client, project):
    body = gzip.compress(json.dumps({"api_key": project.api_token, "batch": [make_event()]}).encode())

    response = client.post(
        "/batch/", body[: len(body) // 2], content_type="application/json", headers={"Content-Encoding": "gzip"}
    )

    assert response.status_code == 400
    assert response.json() == {
        "type": "invalid_request",
        "code": "parse_error",
        "detail": messages.MALFORMED_GZIP,
        "attr": None,
    }
    assert stored(project).count() == 0


def test_invalid_base64_form_data_is_a_400(client):
    response = client.post("/e/", urlencode({"data": "not*base64!"}), content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert response.json() == {
        "type": "invalid_request",
        "code": "parse_error",
        "detail": messages.MALFORMED_BASE64,
        "attr": None,
    }


def test_a_10_mb_body_is_a_413(client, project, settings):
    settings.CAPTURE_MAX_BODY_BYTES = 5 * 1024 * 1024
    padding = "x" * (10 * 1024 * 1024)

    response = post_json(client, {"api_key": project.api_token, "batch": [make_event(properties={"pad": padding})]})

    assert response.status_code == 413
    assert response.json() == {
        "type": "invalid_request",
        "code": "too_large",
        "detail": messages.BODY_TOO_LARGE.format(limit=5 * 1024 * 1024),
        "attr": None,
    }
    assert stored(project).count() == 0


def test_a_gzip_body_expanding_past_the_limit_is_a_413(client, project, settings):
    settings.CAPTURE_MAX_BODY_BYTES = 1024 * 1024
    body = gzip.compress(
        json.dumps({"api_key": project.api_token, "batch": [make_event(properties={"pad": "0" * 2_000_000})]}).encode()
    )
    assert len(body) < 1024 * 1024

    response = client.post("/batch/", body, content_type="application/json", headers={"Content-Encoding": "gzip"})

    assert response.status_code == 413
    assert response.json()["detail"] == messages.BODY_TOO_LARGE.format(limit=1024 * 1024)


def test_batch_that_is_not_a_list_is_a_400(client, project):
    response = post_json(client, {"api_key": project.api_token, "batch": "events"})

    assert response.status_code == 400
    assert response.json() == {
        "type": "invalid_request",
        "code": "invalid_input",
        "detail": messages.BATCH_NOT_LIST.format(key="batch"),
        "attr": None,
    }


def _far_future() -> str:
    return (timezone.now() + dt.timedelta(hours=24)).isoformat()


@pytest.mark.parametrize(
    ("bad_event", "detail"),
    [
        ("not an event", messages.EVENT_NOT_OBJECT),
        (42, messages.EVENT_NOT_OBJECT),
        ({"distinct_id": "u", "properties": {}}, messages.EVENT_NAME_MISSING),
        ({"event": "", "distinct_id": "u"}, messages.EVENT_NAME_MISSING),
        ({"event": "x", "properties": {}}, messages.DISTINCT_ID_MISSING),
        ({"event": "x", "distinct_id": "  "}, messages.DISTINCT_ID_MISSING),
        ({"event": "x", "distinct_id": "u", "properties": ["a"]}, messages.PROPERTIES_NOT_OBJECT),
        ({"event": "x", "distinct_id": "u", "properties": "a=1"}, messages.PROPERTIES_NOT_OBJECT),
        ({"event": "x", "distinct_id": "u", "timestamp": "yesterday"}, messages.TIMESTAMP_INVALID),
        ({"event": "x", "distinct_id": "u", "timestamp": "far-future"}, messages.TIMESTAMP_IN_FUTURE),
        ({"event": "x", "distinct_id": "u", "uuid": "not-a-uuid"}, messages.EVENT_UUID_INVALID),
    ],
)
def test_invalid_events_are_rejected_by_index_and_the_valid_ones_kept(client, project, bad_event, detail):
    if isinstance(bad_event, dict) and bad_event.get("timestamp") == "far-future":
        bad_event = {**bad_event, "timestamp": _far_future()}
    good = [make_event(distinct_id="good-1"), make_event(distinct_id="good-2")]

    response = post_json(client, {"api_key": project.api_token, "batch": [good[0], bad_event, good[1]]})

    assert response.status_code == 200
    assert response.json() == {"status": 1, "rejected": [{"index": 1, "detail": detail}]}
    assert sorted(stored(project).values_list("distinct_id", flat=True)) == ["good-1", "good-2"]


def test_a_timestamp_just_under_the_future_bound_is_accepted(client, project):
    event = make_event(timestamp=(timezone.now() + dt.timedelta(hours=22, minutes=59)).isoformat())

    response = post_json(client, {"api_key": project.api_token, "batch": [event]})

    assert response.json() == {"status": 1}


def test_when_no_event_is_valid_the_answer_is_a_400(client, project):
    response = post_json(client, {"api_key": project.api_token, "batch": [{"event": "x"}, "junk"]})

    assert response.status_code == 400
    assert response.json() == rejected_body(messages.DISTINCT_ID_MISSING, index=0)


def test_non_finite_numbers_are_rejected(client, project):
    # json.dumps writes the NaN literal, as some senders do.
    event = {"event": "x", "distinct_id": "u", "properties": {"v": float("nan")}}
    body = json.dumps({"api_key": project.api_token, "batch": [event]})
    assert "NaN" in body

    response = client.post("/batch/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == rejected_body(messages.PROPERTIES_NOT_FINITE)


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "Infinity", "-Infinity"])
def test_numbers_beyond_a_double_are_rejected_as_non_finite(client, project, literal):
    body = f'{{"api_key": "{project.api_token}", "batch": [{{"event": "x", "distinct_id": "u", "properties": '
    body += f'{{"v": {literal}, "w": null}}}}]}}'

    response = client.post("/batch/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == rejected_body(messages.PROPERTIES_NOT_FINITE)


@pytest.mark.parametrize(
    "value",
    [2**64, 2**64 - 1, -(2**63) - 1, -(2**63), 12345678901234567890123, 0.1, 1e-7, 2.5, None, "12345678901234567890"],
)
def test_numbers_are_stored_exactly(client, project, value):
    """Integers beyond 64 bits stay integers (orjson would read them as floats), whichever parser reads the body."""
    event = make_event(properties={"v": value, "nested": [{"v": value}]})

    response = post_json(client, {"api_key": project.api_token, "batch": [event]})

    assert response.status_code == 200
    assert stored(project).get().properties == {"v": value, "nested": [{"v": value}]}


def test_nul_characters_are_replaced_not_a_500(client, project):
    event = make_event(name="a\x00b", distinct_id="u\x00", properties={"k\x00": "v\x00", "nested": ["\x00"]})

    response = post_json(client, {"api_key": project.api_token, "batch": [event]})

    assert response.status_code == 200
    row = stored(project).get()
    assert (row.event, row.distinct_id) == ("a\ufffdb", "u\ufffd")
    assert row.properties == {"k\ufffd": "v\ufffd", "nested": ["\ufffd"]}


def test_get_is_a_405(client):
    response = client.get("/batch/")

    assert response.status_code == 405
    assert response.json() == {
        "type": "invalid_request",
        "code": "method_not_allowed",
        "detail": messages.METHOD_NOT_ALLOWED.format(method="GET"),
        "attr": None,
    }


def test_cors_preflight_is_answered(client):
    response = client.options(
        "/e/", headers={"Origin": "https://app.example.com", "Access-Control-Request-Headers": "content-type"}
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert response["Access-Control-Allow-Headers"] == "content-type"
