"""What every SDK endpoint shares: POST only, CORS for browsers, CSRF exempt, errors in PostHog's envelope."""

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status

from events import messages
from events.payloads import PayloadError
from events.selectors import project_for_api_token
from experiments_api.exceptions import dependency_unavailable_response, error_body
from experiments_api.models import Project
from experiments_api.renderers import json_bytes


def json_response(body: dict, *, status: int = 200) -> HttpResponse:
    """A JSON answer written as the API's renderer writes it (orjson: the flags answer is the hot path)."""
    return HttpResponse(json_bytes(body), status=status, content_type="application/json")


def error_response(status_code: int, *, type: str, code: str, detail: str, attr: str | None = None) -> HttpResponse:
    return json_response(error_body(type=type, code=code, detail=detail, attr=attr), status=status_code)


def sdk_endpoint(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Wrap a POST view called by SDKs (also from browsers, hence CORS and no CSRF check; they send a project
    token, not a cookie). A PayloadError raised by the view becomes its 400/401/413 envelope, a dependency failure
    (database down) a 503 with Retry-After."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method == "OPTIONS":
            response = HttpResponse()
        elif request.method != "POST":
            response = error_response(
                status.HTTP_405_METHOD_NOT_ALLOWED,
                type="invalid_request",
                code="method_not_allowed",
                detail=messages.METHOD_NOT_ALLOWED.format(method=request.method),
            )
        else:
            try:
                response = view(request)
            except PayloadError as error:
                response = error_response(
                    error.status_code, type=error.error_type, code=error.code, detail=error.message, attr=error.attr
                )
            except Exception as error:
                response = dependency_unavailable_response(error)
                if response is None:
                    raise
        return _with_cors_headers(request, response)

    return wrapper


def _with_cors_headers(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = request.headers.get("Origin") or "*"
    response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = request.headers.get("Access-Control-Request-Headers") or "Content-Type"
    response["Vary"] = "Origin"
    return response


def project_for_token(token: str | None) -> Project:
    """The project a project token (phc_…) names; a missing or unknown token is a 401."""
    if not token:
        raise PayloadError(
            messages.TOKEN_MISSING,
            status_code=status.HTTP_401_UNAUTHORIZED,
            code="not_authenticated",
            error_type="authentication_error",
        )
    project = project_for_api_token(token)
    if project is None:
        raise PayloadError(
            messages.TOKEN_INVALID,
            status_code=status.HTTP_401_UNAUTHORIZED,
            code="authentication_failed",
            error_type="authentication_error",
        )
    return project
