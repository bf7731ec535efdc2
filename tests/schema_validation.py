"""Validates the responses the test suite receives against the OpenAPI schema the server serves (openapi-core).

`tests/conftest.py` wraps Django's test client with `validate_response` for the whole run, so a response field,
status code or content type that drifts from `/api/schema/` fails the test that received it. Responses to paths or
methods the schema does not describe (the SDK capture endpoints, unknown URLs) are not validated; an undocumented
status code on a documented operation is drift and fails.
"""

from functools import cache

from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException
from drf_spectacular.generators import SchemaGenerator
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIResponse
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathError
from werkzeug.datastructures import Headers, ImmutableMultiDict


@cache
def served_schema() -> dict:
    """The schema `/api/schema/` serves (the same generator and settings, without a request)."""
    return SchemaGenerator().get_schema(request=None, public=True)


@cache
def _openapi() -> OpenAPI:
    return OpenAPI.from_dict(served_schema())


class _OpenAPIRequest:
    """An openapi-core request for a Django request. The routes accept a missing trailing slash, the schema
    spells every path with one, so the path is matched with the slash added."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        self.parameters = RequestParameters(
            path={},
            query=ImmutableMultiDict(request.GET.lists()),
            header=Headers(request.headers.items()),
            cookie=ImmutableMultiDict(request.COOKIES),
        )

    @property
    def host_url(self) -> str:
        # Read unchecked: a test may send a Host outside ALLOWED_HOSTS on purpose.
        return f"{self.request.scheme}://{self.request.META.get('HTTP_HOST', 'testserver')}"

    @property
    def path(self) -> str:
        path = self.request.path
        return path if path.endswith("/") else f"{path}/"

    @property
    def method(self) -> str:
        return self.request.method.lower()

    @property
    def body(self) -> bytes:
        try:
            return self.request.body
        except RawPostDataException:  # a form body already parsed as a stream; responses do not depend on it
            return b""

    @property
    def content_type(self) -> str:
        return self.request.content_type or "application/json"


def validate_response(request: HttpRequest, response: HttpResponse) -> None:
    """Raise AssertionError when `response` does not match what the schema documents for `request`'s operation."""
    if getattr(response, "streaming", False) or response.get("Content-Type", "").startswith("text/html"):
        return  # the browsable API and docs pages, which the schema does not describe
    openapi_request = _OpenAPIRequest(request)
    errors = list(_openapi().iter_response_errors(openapi_request, DjangoOpenAPIResponse(response)))
    relevant = [error for error in errors if not isinstance(error, PathError)]
    if relevant:
        raise AssertionError(
            f"{request.method} {request.get_full_path()} answered {response.status_code} "
            f"{response.content[:300]!r}, which the OpenAPI schema does not describe: "
            + "; ".join(_describe(error) for error in relevant)
        )


def _describe(error: Exception) -> str:
    schema_errors = getattr(error.__cause__, "schema_errors", None)
    if not schema_errors:
        return f"{type(error).__name__}: {error}"
    return ", ".join(
        f"{'/'.join(map(str, schema_error.absolute_path)) or '(body)'}: {schema_error.message[:200]}"
        for schema_error in schema_errors
    )
