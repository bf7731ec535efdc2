"""Test settings: the suite runs against a real PostgreSQL and Redis, never a silent SQLite fallback (SQLite only
when asked for by name, see test_sqlite)."""

import os
import uuid

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-long-enough-for-django-deploy-checks")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/experiments_api")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")

from experiments_api.settings.base import *  # noqa: E402,F403
from experiments_api.settings.base import DATABASES  # noqa: E402

wanted_engine = "sqlite3" if os.environ.get("TEST_DATABASE_VENDOR") == "sqlite" else "postgresql"
if DATABASES["default"]["ENGINE"] != f"django.db.backends.{wanted_engine}":
    raise ImproperlyConfigured("The test suite runs against PostgreSQL: set DATABASE_URL to a postgres:// URL.")

ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests run tasks in-process unless a test starts a real worker (see tests/test_celery_worker.py), which consumes this
# run's own queue only, so runs sharing a Redis database never take each other's messages.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_DEFAULT_QUEUE = f"tests-{uuid.uuid4().hex}"
