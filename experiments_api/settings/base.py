"""Server settings, read from the environment (see .env.example) with safe defaults."""

from pathlib import Path

import dj_database_url
from django.core.checks.security.base import SECRET_KEY_WARNING_MSG, _check_secret_key
from django.core.exceptions import ImproperlyConfigured

from experiments_api.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env_bool("DEBUG", default=False)

_DEVELOPMENT_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"
_GENERATE_SECRET_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
SECRET_KEY = (env_str("SECRET_KEY") or "").strip() or (_DEVELOPMENT_SECRET_KEY if DEBUG else None)
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set SECRET_KEY in the environment, or DEBUG=true for local development."
    )
# Django's deploy check security.W009, enforced as an error: `check --deploy` alone would only warn.
if not DEBUG and not _check_secret_key(SECRET_KEY):
    raise ImproperlyConfigured(f"{SECRET_KEY_WARNING_MSG % 'SECRET_KEY'} Generate one with: {_GENERATE_SECRET_KEY}")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Before rest_framework: its templates override the browsable API's (a link to the results page).
    "pages",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "experiments_api",
    "flags",
    "experiments",
    "events",
    "persons",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ in production (gunicorn, DEBUG off) from STATIC_ROOT, filled by `collectstatic`.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "experiments_api.urls"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "experiments_api.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # A persistent connection is checked at a request's first query, so one the server dropped (a restart, a
        # failover) is replaced instead of failing that request.
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "experiments_api.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Compressed copies, no hashed names: templates resolve static paths without a manifest, so the test live server
# (which serves from the finders) and a checkout that has not run `collectstatic` render the same pages.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LOGIN_URL = "/api-auth/login/"
LOGIN_REDIRECT_URL = "/"
CSRF_FAILURE_VIEW = "experiments_api.exceptions.csrf_failure_view"

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=True)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "experiments_api.authentication.PersonalAPIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "experiments_api.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": [
        "experiments_api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "experiments_api.renderers.JSONRenderer",
        "experiments_api.renderers.BrowsableAPIRenderer",
    ],
    # One throttle checks both rates (one cache read and write per request).
    "DEFAULT_THROTTLE_CLASSES": ["experiments_api.throttling.PersonalAPIKeyThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "personal_api_key_burst": env_str("THROTTLE_RATE_BURST", "480/minute"),
        "personal_api_key_sustained": env_str("THROTTLE_RATE_SUSTAINED", "4800/hour"),
    },
    "EXCEPTION_HANDLER": "experiments_api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "experiments_api.schema.ApiAutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

EXCEPTIONS_HOG = {"ENABLE_IN_DEBUG": True}

SPECTACULAR_SETTINGS = {
    "TITLE": "Experiments API",
    "DESCRIPTION": "A self-hostable server speaking PostHog's Experiments HTTP API.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "OAS_VERSION": "3.1.0",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc load their scripts from drf-spectacular-sidecar's bundled static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Operation ids and tags are named after the resource, without the common prefix.
    "SCHEMA_PATH_PREFIX": r"^/api(/projects/\{project_id\})?",
    # The API takes JSON; the browsable API's form parsers still work, but are not advertised to SDKs.
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    "ENUM_NAME_OVERRIDES": {
        "TimeseriesStatusEnum": "experiments.api.serializers.results.TIMESERIES_STATUSES",
        "ActiveRecalculationStatusEnum": "experiments.models.ACTIVE_RECALCULATION_STATUSES",
        "RecalculationStatusEnum": "experiments.models.RecalculationStatus",
        "HealthStatusEnum": "experiments.stats.health_checks.HEALTH_STATUSES",
    },
}

REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL
# Without a broker the tasks run in-process, so the embedded default needs no Redis.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 25 * 60)
# A task a dead worker held goes back on the queue this long after its delivery: longer than a lease and than any
# countdown (retries, lease waits), so only abandoned messages are redelivered; a long task redelivered while it
# still runs finds its lease live and waits.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 90)}
# A worker holds a recalculation this long past its last progress; then another task may take it over.
RECALCULATION_LEASE_SECONDS = env_int("RECALCULATION_LEASE_SECONDS", 60)
# A recalculation pending this long without a change is requeued by the sweep (its message may have been lost).
RECALCULATION_PENDING_REQUEUE_SECONDS = env_int("RECALCULATION_PENDING_REQUEUE_SECONDS", 120)
CELERY_TIMEZONE = "UTC"

# Short socket timeouts: an unreachable Redis makes a request answer 503 at once instead of hanging a worker.
CACHE_REDIS_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}
CACHES = {
    "default": (
        {
            "BACKEND": "experiments_api.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": CACHE_REDIS_OPTIONS,
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# How long a server process may keep a project's flag definitions (see flags.cache); changes invalidate them at
# once through the shared cache, so without Redis (a cache per process) they are not kept at all by default.
FLAG_DEFINITIONS_CACHE_SECONDS = env_int("FLAG_DEFINITIONS_CACHE_SECONDS", 60 if REDIS_URL else 0)

CAPTURE_MAX_BODY_BYTES = env_int("CAPTURE_MAX_BODY_BYTES", 20 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = CAPTURE_MAX_BODY_BYTES
# Where events live: unset for the Django database; clickhouse://… or chdb://… (events/clickhouse/client.py).
EVENT_STORE_URL = env_str("EVENT_STORE_URL") or ""
# A ClickHouse cluster name: tables are then Replicated, with events Distributed by person.
CLICKHOUSE_CLUSTER = env_str("CLICKHOUSE_CLUSTER") or ""

# Every handler redacts query-string secrets. Django's own loggers are reconfigured so none keeps an unfiltered
# handler: `django` propagates to the root, runserver's request lines (`django.server`) keep their format.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "experiments_api.log_redaction.RedactSecretsFilter"}},
    "formatters": {
        "django.server": {"()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}", "style": "{"}
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_secrets"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact_secrets"],
        },
    },
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
