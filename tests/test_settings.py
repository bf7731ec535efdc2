"""Production settings never fall back to insecure defaults; development settings are only what manage.py uses."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

LOAD_SETTINGS = (
    "import django; django.setup(); from django.conf import settings; print(settings.DEBUG, settings.ALLOWED_HOSTS)"
)


STRONG_SECRET_KEY = "a-production-grade-secret-key-of-more-than-fifty-characters"
WEAK_SECRET_KEY = "Your SECRET_KEY has less than 50 characters"


def load(module: str, **environment: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")}
    env.update(DJANGO_SETTINGS_MODULE=module, **environment)
    return subprocess.run(
        [sys.executable, "-c", LOAD_SETTINGS], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
    )


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = load("experiments_api.settings.base")

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize("value", ["   ", ""])
def test_a_blank_secret_key_counts_as_not_set(value):
    result = load("experiments_api.settings.base", SECRET_KEY=value)

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize(
    "value",
    ["short", "x" * 60, "abcd" * 20, "django-insecure-" + STRONG_SECRET_KEY],
    ids=["short", "one character", "four characters", "insecure prefix"],
)
def test_production_settings_refuse_a_weak_secret_key(value):
    result = load("experiments_api.settings.base", SECRET_KEY=value)

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {WEAK_SECRET_KEY}" in result.stderr
    assert value not in result.stderr


def test_a_weak_secret_key_is_accepted_in_development():
    result = load("experiments_api.settings.dev", SECRET_KEY="short")

    assert result.returncode == 0, result.stderr


def test_production_settings_allow_no_host_unless_told():
    result = load("experiments_api.settings.base", SECRET_KEY=STRONG_SECRET_KEY)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False []"


def test_development_settings_default_to_debug_on_localhost():
    result = load("experiments_api.settings.dev")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True ['localhost', '127.0.0.1', '[::1]']"


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_a_malformed_boolean_is_a_configuration_error(value):
    result = load("experiments_api.settings.base", SECRET_KEY=STRONG_SECRET_KEY, DEBUG=value)

    assert result.returncode != 0
    assert f"DEBUG must be a boolean (true/false), got '{value}'." in result.stderr
