"""What the benchmarks share: Django set up with the production settings, the PostgreSQL database migrated, and
gunicorn started on a free local port with the same settings.

A benchmark script starts with

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.harness import setup_django  # noqa: E402

    setup_django(SOME_SETTING="value")

and imports Django's and the project's modules after that call.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import django
from django.core.management import call_command
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
# The production settings, as gunicorn and the workers run them, with a secret key only the benchmarks use.
SERVER_ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "experiments_api.settings.base",
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-" + "b3nch" * 10,
    "ALLOWED_HOSTS": "127.0.0.1",
    "LOG_LEVEL": "WARNING",
}
# For benchmarks that send thousands of API requests a minute with one key: the per-key rate limits lifted.
UNTHROTTLED = {"THROTTLE_RATE_BURST": "100000000/minute", "THROTTLE_RATE_SUSTAINED": "100000000/hour"}


def setup_django(**settings: str) -> None:
    """Set up Django with SERVER_ENVIRONMENT and `settings`; variables already in the environment win (so
    DATABASE_URL, REDIS_URL or any setting can be given on the command line)."""
    environment = {**SERVER_ENVIRONMENT, **settings}
    os.environ.update({key: value for key, value in environment.items() if key not in os.environ})
    django.setup()


def prepare_database() -> None:
    """Exit unless DATABASE_URL names a PostgreSQL database (the baselines are PostgreSQL's), then migrate it."""
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    call_command("migrate", verbosity=0)


def server_environment(**settings: str) -> dict[str, str]:
    """The environment of a server process: this process's (set up by setup_django) with `settings` on top."""
    return {**os.environ, **settings}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gunicorn_command(port: int, workers: int) -> list[str]:
    """gunicorn on 127.0.0.1:`port` with `workers` processes of two threads each, as the Docker image runs it."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "experiments_api.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        "2",
        "--log-level",
        "warning",
    ]


def start_gunicorn(workers: int, **settings: str) -> tuple[subprocess.Popen, int]:
    """gunicorn on a free port with this process's settings and `settings`, once it listens: (process, port)."""
    port = free_port()
    server = subprocess.Popen(gunicorn_command(port, workers), cwd=ROOT, env=server_environment(**settings))
    try:
        wait_for_port(port, "gunicorn")
    except SystemExit:
        server.terminate()
        raise
    return server, port


def wait_for_port(port: int, what: str, timeout: float = 60) -> None:
    """Return once something listens on 127.0.0.1:`port`; exit naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not listen on {port} within {timeout:.0f} seconds.")
