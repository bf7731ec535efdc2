"""PostHog's error envelope `{type, code, detail, attr}` for every error, and the domain error type."""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import DataError, InterfaceError, OperationalError
from django.db.models import ProtectedError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import csrf
from django.views.decorators.csrf import csrf_exempt
from exceptions_hog import exception_handler as envelope_exception_handler
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response

from experiments_api import messages

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """Raised by services for a refused business rule; the exception handler renders it with its status."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_input"

    def __init__(self, message: str, *, code: str | None = None, attr: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.attr = attr


class ConflictError(DomainError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class NotFoundError(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"


class ServiceUnavailable(DomainError):
    """A dependency (database, cache, broker) cannot be reached: 503 with `Retry-After`, and nothing was written."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    retry_after_seconds = 30


def _as_api_exception(exc: DomainError) -> exceptions.APIException:
    detail = exceptions.ErrorDetail(exc.message, code=exc.code)
    if exc.status_code == status.HTTP_400_BAD_REQUEST:
        return exceptions.ValidationError({exc.attr: [detail]} if exc.attr else [detail])
    api_exception = exceptions.APIException(detail)
    api_exception.status_code = exc.status_code
    api_exception.default_type = "server_error" if exc.status_code >= 500 else "invalid_request"
    return api_exception


# Exceptions the envelope handler maps itself; anything else is a 500.
_ENVELOPE_EXCEPTIONS = (exceptions.APIException, Http404, PermissionDenied, ProtectedError)


def service_unavailable_for(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 to answer when `exc` is a dependency failure (logged with its traceback), else None.

    A lost or refused database connection, a statement timeout or a deadlock are OperationalError/InterfaceError;
    every redis-py error comes from the cache (the broker's own errors reach us as kombu's OperationalError).
    A ServiceUnavailable raised by a service is answered as it is.
    """
    if isinstance(exc, ServiceUnavailable):
        return exc
    if isinstance(exc, OperationalError | InterfaceError):
        dependency = "database"
    elif isinstance(exc, BrokerOperationalError):
        dependency = "task queue"
    elif isinstance(exc, RedisError):
        dependency = "cache"
    else:
        return None
    logger.error("The %s is unavailable", dependency, exc_info=exc)
    return ServiceUnavailable(messages.DEPENDENCY_UNAVAILABLE.format(dependency=dependency))


def dependency_unavailable_response(exc: BaseException) -> JsonResponse | None:
    """The 503 envelope with Retry-After for a dependency failure outside DRF views, or None for other errors."""
    error = service_unavailable_for(exc)
    if error is None:
        return None
    response = JsonResponse(
        error_body(type="server_error", code=error.code, detail=error.message), status=error.status_code
    )
    response["Retry-After"] = str(error.retry_after_seconds)
    return response


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if (unavailable := service_unavailable_for(exc)) is not None:
        exc = unavailable
    retry_after = getattr(exc, "retry_after_seconds", None)
    if isinstance(exc, DomainError):
        exc = _as_api_exception(exc)
    elif isinstance(exc, DataError):
        # Input that passed validation but that the database refuses: the client's fault, and the transaction
        # is rolled back, so nothing is half-written.
        exc = exceptions.ValidationError(
            [exceptions.ErrorDetail(messages.DATABASE_REJECTED_VALUE, code="invalid_input")]
        )
    elif isinstance(exc, RequestDataTooBig | TooManyFieldsSent | TooManyFilesSent):
        # Django's limits on a form or multipart body (DATA_UPLOAD_MAX_*), met while DRF parses it.
        exc = exceptions.ParseError(messages.FORM_TOO_LARGE)
    elif not isinstance(exc, _ENVELOPE_EXCEPTIONS):
        # Reported here, then answered as the generic 500: the envelope handler would otherwise read the HTTP
        # status from whatever `status_code` attribute a foreign exception carries (redis-py's is None: a 200).
        logger.error("Unhandled error in API view", exc_info=exc)
        exc = exceptions.APIException()
    response = envelope_exception_handler(exc, context)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def error_body(*, type: str, code: str, detail: str, attr: str | None = None) -> dict:
    return {"type": type, "code": code, "detail": detail, "attr": attr}


# Django's CSRF check runs before a view, so without the exemption an unsafe method on an unknown path with a
# session cookie would answer Django's HTML CSRF page instead of this 404.
@csrf_exempt
def not_found_view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        error_body(type="invalid_request", code="not_found", detail=messages.NOT_FOUND),
        status=status.HTTP_404_NOT_FOUND,
    )


def server_error_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        error_body(type="server_error", code="error", detail=messages.SERVER_ERROR),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


BAD_REQUEST = "Bad request."
# DRF's session authentication words its CSRF failures the same way.
CSRF_FAILED = "CSRF Failed: {reason}"
# The pages people use in a browser keep Django's CSRF page, which explains what to do.
HTML_PAGE_PREFIXES = ("/admin/", "/api-auth/")


def bad_request_view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler400: a request Django refuses before any view (a Host not in ALLOWED_HOSTS, for one)."""
    return JsonResponse(
        error_body(type="invalid_request", code="bad_request", detail=BAD_REQUEST),
        status=status.HTTP_400_BAD_REQUEST,
    )


def csrf_failure_view(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the envelope DRF's session authentication answers for the same failure (403), except on
    the admin and login pages."""
    if request.path.startswith(HTML_PAGE_PREFIXES):
        return csrf.csrf_failure(request, reason)
    return JsonResponse(
        error_body(type="authentication_error", code="permission_denied", detail=CSRF_FAILED.format(reason=reason)),
        status=status.HTTP_403_FORBIDDEN,
    )
