"""Project-level views: the health check."""

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from kombu import Connection


def _database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception:
        return "unavailable"


def _broker_status() -> str:
    if settings.CELERY_BROKER_URL == "memory://":
        return "in-process"
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as broker:
            broker.ensure_connection(max_retries=1)
        return "ok"
    except Exception:
        return "unavailable"


def health(request: HttpRequest) -> JsonResponse:
    """200 when every part answers; 503 naming the failing part otherwise."""
    parts = {"database": _database_status(), "broker": _broker_status()}
    failing = [name for name, state in parts.items() if state == "unavailable"]
    body = {"status": "error" if failing else "ok", **parts}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
