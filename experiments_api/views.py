"""Project-level views: the health check and the index page at `/`."""

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe
from kombu import Connection

from experiments_api.routing import CURRENT_PROJECT_ALIAS, PROJECT_PREFIX, projects_router


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


def _browsable_resources() -> list[dict]:
    """The listable resources of the current project, for the index page's links into the browsable API."""
    return [
        {
            "name": prefix.removeprefix(f"{PROJECT_PREFIX}/"),
            "url": reverse(f"{basename}-list", kwargs={"project_id": CURRENT_PROJECT_ALIAS}),
        }
        for prefix, viewset, basename in projects_router.registry
        if hasattr(viewset, "list")
    ]


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    """`/`: links to the documentation, the login, the admin and the API."""
    return render(request, "experiments_api/index.html", {"resources": _browsable_resources()})
