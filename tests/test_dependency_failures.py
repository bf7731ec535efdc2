"""A dependency that is down (Redis cache, PostgreSQL) is a 503 with Retry-After, never a 200 or a 500.

The cache is pointed at a closed local port and the database connection at a closed port or killed under the
request; the shared Redis and PostgreSQL keep running for everyone else.
"""

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from django.db import close_old_connections, connection
from django.test import override_settings

from events.models import Event
from experiments.models import Experiment
from experiments_api.exceptions import ServiceUnavailable
from experiments_api.settings.base import CACHE_REDIS_OPTIONS
from tests.factories import ExperimentFactory, FeatureFlagFactory
from tests.helpers import closed_port, unavailable


def assert_unavailable(response, dependency: str) -> None:
    assert (response.status_code, response.json()) == (503, unavailable(dependency))
    assert response["Retry-After"] == str(ServiceUnavailable.retry_after_seconds) == "30"


@pytest.fixture
def experiment(project):
    return ExperimentFactory(project=project, name="Checkout")


@pytest.fixture
def experiments_url(project) -> str:
    return f"/api/projects/{project.pk}/experiments/"


def capture(client, project):
    body = {
        "api_key": project.api_token,
        "batch": [{"event": "$pageview", "distinct_id": "user-1", "uuid": str(uuid.uuid4()), "properties": {}}],
    }
    return client.post("/batch/", json.dumps(body), content_type="application/json")


def evaluate_flags(client, project):
    body = {"token": project.api_token, "distinct_id": "user-1"}
    return client.post("/flags/?v=2", json.dumps(body), content_type="application/json")


# --- Redis (the cache) unreachable ----------------------------------------------------------------------------


def unreachable_cache() -> dict:
    """A real Redis cache client whose server is unreachable (a closed local port)."""
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        "OPTIONS": CACHE_REDIS_OPTIONS,
    }


@pytest.fixture
def cache_down():
    with override_settings(CACHES={"default": unreachable_cache()}):
        yield


def test_without_the_cache_an_api_read_is_a_503_with_retry_after(cache_down, api_client, experiments_url, experiment):
    response = api_client.get(experiments_url)

    assert_unavailable(response, "cache")


def test_without_the_cache_a_write_answers_503_and_is_not_applied(
    cache_down, api_client, experiments_url, experiment, caplog
):
    update = api_client.patch(f"{experiments_url}{experiment.pk}/", {"name": "Renamed"}, format="json")
    create = api_client.post(experiments_url, {"name": "New", "feature_flag_key": "new-flag"}, format="json")

    assert_unavailable(update, "cache")
    assert_unavailable(create, "cache")
    assert list(Experiment.objects.values_list("name", flat=True)) == ["Checkout"]
    assert "The cache is unavailable" in caplog.text
    assert "Error 111 connecting to 127.0.0.1" in caplog.text


def test_without_the_cache_capture_and_flags_keep_working(cache_down, client, project):
    flag = FeatureFlagFactory(project=project)

    captured = capture(client, project)
    evaluated = evaluate_flags(client, project)

    assert (captured.status_code, captured.json()) == (200, {"status": 1})
    assert Event.objects.filter(project=project).count() == 1
    assert evaluated.status_code == 200
    assert set(evaluated.json()["featureFlags"]) == {flag.key}


def test_without_the_cache_local_evaluation_lets_requests_through_unthrottled(cache_down, api_client, project, caplog):
    flag = FeatureFlagFactory(project=project)

    response = api_client.get(f"/api/feature_flag/local_evaluation/?token={project.api_token}")

    assert response.status_code == 200
    assert [definition["key"] for definition in response.json()["flags"]] == [flag.key]
    assert "The cache is unavailable; " in caplog.text
    assert [record.levelno for record in caplog.records if record.name == "experiments_api.throttling"] == [
        logging.WARNING
    ]


def test_with_the_cache_back_the_api_answers_again(api_client, experiments_url, experiment):
    with override_settings(CACHES={"default": unreachable_cache()}):
        assert api_client.get(experiments_url).status_code == 503

    response = api_client.get(experiments_url)

    assert response.status_code == 200
    assert [row["name"] for row in response.json()["results"]] == ["Checkout"]


# --- PostgreSQL unreachable or its connection dropped ------------------------------------------------------------


@contextmanager
def database_down() -> Iterator[None]:
    """New connections of this thread go to a closed port until the block ends."""
    settings_dict = connection.settings_dict
    original_port = settings_dict["PORT"]
    connection.close()
    settings_dict["PORT"] = str(closed_port())
    try:
        yield
    finally:
        connection.close()
        settings_dict["PORT"] = original_port


def kill_this_threads_database_connection() -> None:
    """Terminate the server process behind Django's connection, from another connection, as a restart would."""
    pid = connection.connection.info.backend_pid
    database = connection.settings_dict
    with psycopg.connect(
        host=database["HOST"], port=database["PORT"], user=database["USER"], dbname=database["NAME"], autocommit=True
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.django_db(transaction=True)
def test_without_the_database_every_endpoint_is_a_503(api_client, client, experiments_url, experiment, project):
    detail_url = f"{experiments_url}{experiment.pk}/"

    with database_down():
        answers = {
            "list": api_client.get(experiments_url),
            "update": api_client.patch(detail_url, {"name": "Renamed"}, format="json"),
            "capture": capture(client, project),
            "flags": evaluate_flags(client, project),
        }

    for response in answers.values():
        assert_unavailable(response, "database")
    assert answers["capture"]["Access-Control-Allow-Origin"] == "*"
    assert Experiment.objects.get(pk=experiment.pk).name == "Checkout"
    assert Event.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_dropped_database_connection_is_a_503_and_the_next_request_reconnects(
    api_client, experiments_url, experiment, caplog
):
    detail_url = f"{experiments_url}{experiment.pk}/"
    assert api_client.get(detail_url).status_code == 200
    kill_this_threads_database_connection()

    dropped = api_client.patch(detail_url, {"name": "Renamed"}, format="json")
    # What Django does after every request in a real server: drop a connection that failed.
    close_old_connections()
    retried = api_client.patch(detail_url, {"name": "Renamed"}, format="json")

    assert_unavailable(dropped, "database")
    assert "The database is unavailable" in caplog.text
    assert (retried.status_code, retried.json()["name"]) == (200, "Renamed")
    assert Experiment.objects.get(pk=experiment.pk).name == "Renamed"


@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_between_requests_is_replaced_before_the_next_request_uses_it(
    api_client, experiments_url, experiment
):
    detail_url = f"{experiments_url}{experiment.pk}/"
    assert api_client.get(detail_url).status_code == 200
    kill_this_threads_database_connection()
    # What Django does at the start of every request in a real server; the health check then runs on first use.
    close_old_connections()

    response = api_client.patch(detail_url, {"name": "Renamed"}, format="json")

    assert (response.status_code, response.json()["name"]) == (200, "Renamed")
    assert Experiment.objects.get(pk=experiment.pk).name == "Renamed"
