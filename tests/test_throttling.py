"""Throttling per personal API key (per user for session logins): 429 in the envelope with Retry-After."""

import pytest
import redis
from django.test import override_settings
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from experiments_api.exceptions import error_body

FROZEN_NOW = 1_700_000_000.0


@pytest.fixture
def url(project) -> str:
    return f"/api/projects/{project.pk}/experiments/"


@pytest.fixture
def rates(monkeypatch):
    """rates(burst, sustained) sets the throttle rates; the clock is frozen so Retry-After is exact.

    DRF reads the rates into SimpleRateThrottle.THROTTLE_RATES once, so override_settings would not reach them.
    """

    def _set(burst: str, sustained: str) -> None:
        monkeypatch.setattr(
            SimpleRateThrottle,
            "THROTTLE_RATES",
            {"personal_api_key_burst": burst, "personal_api_key_sustained": sustained},
        )

    monkeypatch.setattr(SimpleRateThrottle, "timer", lambda throttle: FROZEN_NOW)
    return _set


def throttled_body(seconds: int) -> dict:
    return error_body(
        type="throttled_error",
        code="throttled",
        detail=f"Request was throttled. Expected available in {seconds} seconds.",
    )


@pytest.mark.parametrize(
    ("burst", "sustained", "allowed", "retry_after"),
    [("2/minute", "100/hour", 2, 60), ("100/minute", "3/hour", 3, 3600)],
    ids=["burst", "sustained"],
)
def test_a_key_over_its_rate_gets_429_with_retry_after(rates, api_client, url, burst, sustained, allowed, retry_after):
    rates(burst, sustained)

    statuses = [api_client.get(url).status_code for _ in range(allowed)]
    response = api_client.get(url)

    assert statuses == [200] * allowed
    assert response.status_code == 429
    assert response["Retry-After"] == str(retry_after)
    assert response.json() == throttled_body(retry_after)


def test_each_key_has_its_own_budget(rates, make_client, user, url):
    rates("1/minute", "100/hour")
    first_key, second_key = make_client(user), make_client(user)

    first_key.get(url)

    assert first_key.get(url).status_code == 429
    assert second_key.get(url).status_code == 200


def test_a_session_login_is_throttled_per_user(rates, user, url):
    rates("1/minute", "100/hour")
    client = APIClient()
    client.force_login(user)

    client.get(url)
    response = client.get(url)

    assert response.status_code == 429
    assert response.json() == throttled_body(60)


def test_requests_pass_again_once_the_window_has_moved_on(rates, api_client, url, monkeypatch):
    rates("1/minute", "100/hour")
    api_client.get(url)
    assert api_client.get(url).status_code == 429

    monkeypatch.setattr(SimpleRateThrottle, "timer", lambda throttle: FROZEN_NOW + 61)

    assert api_client.get(url).status_code == 200


def test_both_rates_are_checked_and_recorded_in_one_redis_round_trip_per_request(rates, api_client, url, monkeypatch):
    rates("3/minute", "5/hour")
    api_client.get(url)  # the script is loaded into Redis on first use
    commands = []
    original = redis.Redis.execute_command
    monkeypatch.setattr(
        redis.Redis,
        "execute_command",
        lambda client, *args, **kwargs: commands.append(args[0]) or original(client, *args, **kwargs),
    )

    assert [api_client.get(url).status_code for _ in range(3)] == [200, 200, 429]
    monkeypatch.setattr(SimpleRateThrottle, "timer", lambda throttle: FROZEN_NOW + 61)  # the burst window moved on
    assert [api_client.get(url).status_code for _ in range(3)] == [200, 200, 429]
    response = api_client.get(url)

    assert response["Retry-After"] == str(3600 - 61)
    assert commands == ["EVALSHA"] * 7


def test_without_redis_the_history_is_kept_in_the_configured_cache(rates, api_client, url, monkeypatch):
    rates("3/minute", "5/hour")
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        assert [api_client.get(url).status_code for _ in range(4)] == [200, 200, 200, 429]
        monkeypatch.setattr(SimpleRateThrottle, "timer", lambda throttle: FROZEN_NOW + 61)
        assert [api_client.get(url).status_code for _ in range(3)] == [200, 200, 429]
        response = api_client.get(url)

    assert response["Retry-After"] == str(3600 - 61)
    assert response.json() == throttled_body(3600 - 61)
