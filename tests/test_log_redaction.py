"""Secrets sent in query strings are redacted from every log line: gunicorn's access log, runserver's request lines
and Django's request logger, read from the output of real server processes."""

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from experiments_api.log_redaction import REDACTED, redact_secrets
from tests.helpers import session_database_url

PERSONAL_API_KEY = "phx_TopSecretPersonalKey123"
PROJECT_TOKEN = "phc_TopSecretProjectToken456"
OTHER_SECRET = "hunter2-api-key"
SECRETS = (PERSONAL_API_KEY, PROJECT_TOKEN, OTHER_SECRET)
QUERY = f"personal_api_key={PERSONAL_API_KEY}&token={PROJECT_TOKEN}&api_key={OTHER_SECRET}&v=2"
REDACTED_QUERY = f"personal_api_key={REDACTED}&token={REDACTED}&api_key={REDACTED}&v=2"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment() -> dict:
    return {
        **os.environ,
        "DATABASE_URL": session_database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "INFO",
    }


def get(url: str, **headers: str) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def serve_and_log(command: list[str], port: int, environment: dict) -> tuple[list[int], str]:
    """Start the server, send the requests carrying secrets, stop it once it has logged each of them, and return
    the statuses and its whole log."""
    server = subprocess.Popen(
        command, cwd=settings.BASE_DIR, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True)
    reader.start()
    try:
        # Generous: on a loaded machine a server process takes tens of seconds to import Django.
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, "".join(lines)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        statuses = [
            get(f"{base}/no_such_page?{QUERY}", Referer=f"{base}/?{QUERY}"),
            get(f"{base}/api/projects/@current/experiments/?{QUERY}"),
            get(f"{base}/flags/?{QUERY}"),
        ]
        # A server logs a request line after sending the response: wait for all of them.
        deadline = time.monotonic() + 30
        while sum(' HTTP/1.1" ' in line for line in list(lines)) < len(statuses) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)
        reader.join(timeout=10)
    return statuses, "".join(lines)


def assert_redacted(log: str) -> None:
    for secret in SECRETS:
        assert secret not in log
    assert f"/no_such_page?{REDACTED_QUERY}" in log
    assert f"/api/projects/@current/experiments/?{REDACTED_QUERY}" in log
    assert f"/flags/?{REDACTED_QUERY}" in log


@pytest.mark.django_db
def test_gunicorn_access_log_redacts_query_string_secrets():
    port = free_port()
    command = [
        str(BIN / "gunicorn"),
        "-c",
        "python:experiments_api.gunicorn_config",
        "experiments_api.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--no-control-socket",
    ]
    environment = {**server_environment(), "DJANGO_SETTINGS_MODULE": "experiments_api.settings.base"}

    statuses, log = serve_and_log(command, port, environment)

    assert statuses == [404, 401, 405]
    assert_redacted(log)
    # The referer of the combined log format is redacted too.
    assert f'"http://127.0.0.1:{port}/?{REDACTED_QUERY}"' in log
    # Django's request logger writes through the same redacting handlers.
    assert "Unauthorized: /api/projects/@current/experiments/" in log


@pytest.mark.django_db
def test_runserver_request_lines_redact_query_string_secrets():
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    environment = {**server_environment(), "DJANGO_SETTINGS_MODULE": "experiments_api.settings.dev"}

    statuses, log = serve_and_log(command, port, environment)

    assert statuses == [404, 401, 405]
    assert_redacted(log)
    assert f'"GET /no_such_page?{REDACTED_QUERY} HTTP/1.1" 404' in log


@pytest.mark.parametrize(
    ("line", "redacted"),
    [
        ("GET /x?personal_api_key=phx_a-B_1&ok=1", f"GET /x?personal_api_key={REDACTED}&ok=1"),
        ('"/batch/?token=phc_1;api_key=k2" "-"', f'"/batch/?token={REDACTED};api_key={REDACTED}" "-"'),
        ("/?Access_Token=abc&PASSWORD=p#frag", f"/?Access_Token={REDACTED}&PASSWORD={REDACTED}#frag"),
        ("key phx_abc in a message", f"key {REDACTED} in a message"),
        ("/?q=token&keyword=2&token_count", "/?q=token&keyword=2&token_count"),
    ],
)
def test_redact_secrets(line, redacted):
    assert redact_secrets(line) == redacted
