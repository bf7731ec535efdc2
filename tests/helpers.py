"""Error bodies in PostHog's envelope `{type, code, detail, attr}`, for whole-body assertions in tests."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection

from experiments_api import messages
from experiments_api.exceptions import error_body

NOT_FOUND = error_body(type="invalid_request", code="not_found", detail=messages.NOT_FOUND)
PROJECT_NOT_FOUND = error_body(type="invalid_request", code="not_found", detail=messages.PROJECT_NOT_FOUND)
NOT_A_MEMBER = error_body(type="authentication_error", code="permission_denied", detail=messages.NOT_A_PROJECT_MEMBER)


def validation_error(detail: str, attr: str | None = None, code: str = "invalid_input") -> dict:
    return error_body(type="validation_error", code=code, detail=detail, attr=attr)


def missing_scope(scope: str) -> dict:
    return error_body(
        type="authentication_error", code="permission_denied", detail=messages.MISSING_SCOPE.format(scope=scope)
    )


def project_not_allowed_for_key(project_id: int) -> dict:
    return error_body(
        type="authentication_error",
        code="permission_denied",
        detail=messages.PROJECT_NOT_ALLOWED_FOR_KEY.format(project_id=project_id),
    )


def unavailable(dependency: str) -> dict:
    return error_body(
        type="server_error",
        code="service_unavailable",
        detail=messages.DEPENDENCY_UNAVAILABLE.format(dependency=dependency),
    )


def closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


def session_database_url() -> str:
    """The URL of this session's PostgreSQL test database, for a connection or a process of its own."""
    database = connection.settings_dict
    password = f":{database['PASSWORD']}" if database["PASSWORD"] else ""
    host, port = database["HOST"] or "127.0.0.1", database["PORT"] or 5432
    return f"postgresql://{database['USER']}{password}@{host}:{port}/{database['NAME']}"


def server_process_environment() -> dict:
    """The environment of a child process running the base settings on this session's test database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "experiments_api.settings.base",
        "DATABASE_URL": session_database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
    }


def run_on_sqlite(script: str, argument: object, tmp_path: Path) -> object:
    """Run `script` (Python, reading `sys.argv[1]` as JSON) in a fresh process on the embedded default: a SQLite
    database under `tmp_path`, no Redis, tasks in-process; return the JSON it prints."""
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "experiments_api.settings.base",
        "SECRET_KEY": settings.SECRET_KEY,
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
    }
    output = subprocess.run(
        [sys.executable, "-c", script, json.dumps(argument)],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPOSITORY_ROOT,
    ).stdout
    return json.loads(output)
