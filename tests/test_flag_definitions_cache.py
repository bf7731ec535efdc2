"""The flag definitions cache behind /flags/ (flags.cache): a repeated request reads no flag from the database,
every change made through the API is visible on the very next request, in this process and in every gunicorn
worker, and without Redis the endpoint keeps answering from the database."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings

from flags import cache as flags_cache
from flags.services import feature_flag_update
from tests.factories import FeatureFlagFactory, ProjectFactory
from tests.helpers import session_database_url

ROOT = Path(__file__).resolve().parent.parent
EVERYONE = {"groups": [{"properties": [], "rollout_percentage": 100}]}
NOBODY = {"groups": [{"properties": [], "rollout_percentage": 0}]}
UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}


def evaluated(client, project, distinct_id: str = "alice") -> dict:
    response = client.post(
        "/flags/?v=2",
        json.dumps({"token": project.api_token, "distinct_id": distinct_id}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()["featureFlags"]


def cached_answer(client, project, django_assert_num_queries) -> dict:
    """Ask twice; the second answer must read nothing from the database (the flags here read no stored person)."""
    first = evaluated(client, project)
    with django_assert_num_queries(0):
        second = evaluated(client, project)
    assert second == first
    return second


@pytest.mark.django_db
def test_a_repeated_request_reads_no_flag_from_the_database(client, project, django_assert_num_queries):
    FeatureFlagFactory(project=project, key="banner", filters=EVERYONE)

    with django_assert_num_queries(2):  # the project by its token, its flags (no filter reads a stored person)
        assert evaluated(client, project) == {"banner": True}
    with django_assert_num_queries(0):  # the flags come from this process's copy
        assert evaluated(client, project) == {"banner": True}


@pytest.mark.django_db
def test_every_change_through_the_api_is_visible_on_the_next_request(
    client, api_client, project, django_assert_num_queries
):
    base = f"/api/projects/{project.pk}"
    assert cached_answer(client, project, django_assert_num_queries) == {}

    banner = api_client.post(f"{base}/feature_flags/", {"key": "banner", "filters": EVERYONE}, format="json")
    assert banner.status_code == 201, banner.json()
    assert cached_answer(client, project, django_assert_num_queries) == {"banner": True}

    response = api_client.patch(f"{base}/feature_flags/{banner.json()['id']}/", {"filters": NOBODY}, format="json")
    assert response.status_code == 200, response.json()
    assert cached_answer(client, project, django_assert_num_queries) == {"banner": False}

    holdout = api_client.post(
        f"{base}/experiment_holdouts/", {"name": "Everyone", "filters": [{"rollout_percentage": 100}]}, format="json"
    ).json()
    experiment = api_client.post(
        f"{base}/experiments/",
        {"name": "Checkout", "feature_flag_key": "checkout", "holdout_id": holdout["id"]},
        format="json",
    )
    assert experiment.status_code == 201, experiment.json()
    # A draft's flag is inactive, so it is not evaluated.
    assert cached_answer(client, project, django_assert_num_queries) == {"banner": False}

    response = api_client.post(f"{base}/experiments/{experiment.json()['id']}/launch/", format="json")
    assert response.status_code == 200, response.json()
    held_out = f"holdout-{holdout['id']}"
    assert cached_answer(client, project, django_assert_num_queries) == {"banner": False, "checkout": held_out}

    response = api_client.patch(
        f"{base}/experiment_holdouts/{holdout['id']}/", {"filters": [{"rollout_percentage": 0}]}, format="json"
    )
    assert response.status_code == 200, response.json()
    # alice's variant without the holdout: PostHog's hash of "checkout.alicevariant" is 0.503, in test's half.
    assert cached_answer(client, project, django_assert_num_queries) == {"banner": False, "checkout": "test"}

    response = api_client.patch(f"{base}/feature_flags/{banner.json()['id']}/", {"deleted": True}, format="json")
    assert response.status_code == 200, response.json()
    assert cached_answer(client, project, django_assert_num_queries) == {"checkout": "test"}


@pytest.mark.django_db
def test_local_evaluation_definitions_follow_changes_too(client, make_client, user, project):
    flag = FeatureFlagFactory(project=project, key="banner", filters=EVERYONE)
    key_client = make_client(user, scopes=["feature_flag:read"])
    url = f"/api/feature_flag/local_evaluation/?token={project.api_token}"

    assert [(f["key"], f["active"]) for f in key_client.get(url).json()["flags"]] == [("banner", True)]
    evaluated(client, project)  # /flags/ shares the cached definitions
    feature_flag_update(flag=flag, user=None, changes={"active": False})

    assert [(f["key"], f["active"]) for f in key_client.get(url).json()["flags"]] == [("banner", False)]
    assert evaluated(client, project) == {}


@pytest.mark.django_db
def test_without_redis_flags_are_read_from_the_database(client, project, monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(flags_cache._subscription, "unreachable_until", 0.0)  # restored afterwards
    flag = FeatureFlagFactory(project=project, key="banner", filters=EVERYONE)
    evaluated(client, project)  # cached while Redis answers

    with override_settings(CACHES=UNREACHABLE_REDIS):
        with django_assert_num_queries(1):  # the flags, from the database
            assert evaluated(client, project) == {"banner": True}
        feature_flag_update(flag=flag, user=None, changes={"filters": NOBODY})
        with django_assert_num_queries(1):
            assert evaluated(client, project) == {"banner": False}

    # Redis answers again (after the pause that spares requests a failing round trip): the cache is used again.
    monkeypatch.setattr(flags_cache._subscription, "unreachable_until", 0.0)
    assert cached_answer(client, project, django_assert_num_queries) == {"banner": False}


@pytest.mark.django_db
@override_settings(FLAG_DEFINITIONS_CACHE_SECONDS=0)
def test_the_cache_can_be_turned_off(client, project, django_assert_num_queries):
    FeatureFlagFactory(project=project, key="banner", filters=EVERYONE)
    evaluated(client, project)

    with django_assert_num_queries(1):  # the flags
        assert evaluated(client, project) == {"banner": True}


# --- several server processes -----------------------------------------------------------------------------------


class Gunicorn:
    """gunicorn with two workers on the test database; its access log names the worker (pid) of each request."""

    def __init__(self, log_dir: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.access_log = log_dir / "access.log"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "experiments_api.settings.base",
            "DATABASE_URL": session_database_url(),
            "SECRET_KEY": "flag-cache-test-" + "k3y-" * 12,
            "ALLOWED_HOSTS": "127.0.0.1",
        }
        command = [sys.executable, "-m", "gunicorn", "experiments_api.wsgi", "--bind", f"127.0.0.1:{self.port}"]
        command += ["--workers", "2", "--access-logfile", str(self.access_log), "--access-logformat", "%(p)s"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=(log_dir / "server.log").open("w")
        )

    def evaluated(self, project) -> tuple[dict, str]:
        """featureFlags for alice, on a new connection, and the pid of the worker that answered."""
        served_before = self.served()
        body = json.dumps({"token": project.api_token, "distinct_id": "alice"}).encode()
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(
                b"POST /flags/?v=2 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json"
                + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
        head, _, payload = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), response[:300]
        deadline = time.monotonic() + 10
        while len(self.served()) == len(served_before) and time.monotonic() < deadline:
            time.sleep(0.01)
        return json.loads(payload)["featureFlags"], self.served()[-1]

    def served(self) -> list[str]:
        return self.access_log.read_text().split() if self.access_log.exists() else []

    def wait_until_listening(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("gunicorn did not listen within 60 seconds")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    server = Gunicorn(tmp_path)
    yield server
    server.stop()


def answers_until_every_worker_answered(server, project, times: int) -> list[dict]:
    """Ask until each of the two workers answered at least `times` times (at most 400 requests).

    Sequential requests can all land on one worker (it wins every accept); after 10 of them an unfinished request
    keeps the worker that accepts it busy, so the other one must answer the next."""
    answers, served_by, blocker = [], [], None
    try:
        while len(answers) < 400 and not (
            len(set(served_by)) == 2 and min(map(served_by.count, set(served_by))) >= times
        ):
            if len(served_by) % 10 == 0 and len(served_by) and len(set(served_by)) == 1:
                if blocker is not None:
                    blocker.close()
                blocker = socket.create_connection(("127.0.0.1", server.port), timeout=30)
                blocker.sendall(b"POST /flags/?v=2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n")
                time.sleep(0.2)
            answer, pid = server.evaluated(project)
            answers.append(answer)
            served_by.append(pid)
    finally:
        if blocker is not None:
            blocker.close()
    assert len(set(served_by)) == 2, f"one worker answered all {len(answers)} requests"
    return answers


def test_a_change_reaches_every_server_process_on_its_next_request(gunicorn):
    project = ProjectFactory()
    flag = FeatureFlagFactory(project=project, key="banner", filters=EVERYONE)
    gunicorn.wait_until_listening()
    # Both workers load and keep the definitions (each answers twice, the second time from its copy).
    assert all(answer == {"banner": True} for answer in answers_until_every_worker_answered(gunicorn, project, 2))

    feature_flag_update(flag=flag, user=None, changes={"filters": NOBODY})  # committed: a transactional test

    assert all(answer == {"banner": False} for answer in answers_until_every_worker_answered(gunicorn, project, 1))
