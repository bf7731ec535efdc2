"""OpenAPI: bearer auth for personal API keys, the error responses of every operation, and SDK-friendly names.

`ApiAutoSchema` (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS) adds to each operation the error statuses it can answer, all
with the one `Error` component `{type, code, detail, attr}`, documents PostHog's forbidden DELETE as an empty 405,
and names operations `<resource>_<action>` with the resource as the tag, so generated SDKs read
`experiments_launch(...)` in an `experiments` module.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance, get_override
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import serializers

from experiments_api.mixins import DestroyNotAllowedMixin


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    """PostHog's error envelope, answered by every error of the API."""

    type = serializers.CharField(
        help_text="validation_error, authentication_error, invalid_request, throttled_error or server_error."
    )
    code = serializers.CharField(help_text="A machine-readable code, such as `required`, `not_found`, `throttled`.")
    detail = serializers.CharField(help_text="A human-readable message.")
    attr = serializers.CharField(allow_null=True, help_text="The field the error is about, if any.")


class ClosedSchema:
    """A serializer mixin: its schema component sets `additionalProperties: false`, so a response carrying a key
    the serializer does not declare fails the suite's response validation (tests/schema_validation.py)."""

    closed_schema = True


def error_response(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


ERROR_RESPONSES = {
    400: error_response("Invalid input: a malformed body, query parameter or value refused by a business rule."),
    401: error_response("The API key or session is missing or invalid."),
    403: error_response("The API key lacks the scope, or the user has no access to the project."),
    404: error_response("The project or the object does not exist."),
    429: error_response("Too many requests for this API key; retry after `Retry-After` seconds."),
    500: error_response("An unexpected server error (the envelope only, never a traceback)."),
    503: error_response("A dependency (database, cache, broker) is unavailable; retry after `Retry-After` seconds."),
}
CONFLICT_RESPONSE = error_response("The object changed meanwhile; read it again and retry.")
UNSUPPORTED_MEDIA_TYPE_RESPONSE = error_response("The request body is not in a media type the operation takes.")
DELETE_NOT_ALLOWED = 'DELETE is not allowed (empty body): soft-delete with PATCH `{"deleted": true}` instead.'
STANDARD_ACTIONS = ("list", "create", "retrieve", "update", "partial_update", "destroy")


class ApiAutoSchema(AutoSchema):
    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        if self.method == "DELETE" and isinstance(self.view, DestroyNotAllowedMixin):
            responses.clear()
            responses["405"] = {"description": DELETE_NOT_ALLOWED}
        errors = dict(ERROR_RESPONSES)
        if self.method in ("POST", "PUT", "PATCH"):
            errors[415] = UNSUPPORTED_MEDIA_TYPE_RESPONSE
        for status_code, response in errors.items():
            if str(status_code) not in responses:
                responses[str(status_code)] = self._get_response_for_code(response, str(status_code))
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "response" and isinstance(force_instance(serializer), serializers.ModelSerializer):
            # A model serializer renders every readable field of its instance, so SDKs need no "unset" case.
            schema["required"] = list(schema["properties"])
        if getattr(force_instance(serializer), "closed_schema", False):
            schema["additionalProperties"] = False
        return schema

    def _get_serializer_field_meta(self, field, direction):
        meta = super()._get_serializer_field_meta(field, direction)
        if isinstance(field, serializers.JSONField) and get_override(field, "field") is None:
            # Untyped JSON already allows null; OAS 3.1's `oneOf: [{}, {type: null}]` would match null twice.
            meta.pop("nullable", None)
        return meta

    def get_tags(self) -> list[str]:
        return [self._resource()]

    def get_operation_id(self) -> str:
        action = getattr(self.view, "action", None)
        if action is None:  # a plain view: its tag and the last segment, such as feature_flags_definitions
            return f"{self.get_tags()[0]}_{self._tokenize_path()[-1]}"
        if action not in STANDARD_ACTIONS:
            return f"{self._resource()}_{action}"
        return super().get_operation_id()

    def _resource(self) -> str:
        """The first path segment after the prefix (`/api/projects/{project_id}/`)."""
        return self._tokenize_path()[0].replace("-", "_")


class PersonalAPIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "experiments_api.authentication.PersonalAPIKeyAuthentication"
    name = "PersonalAPIKeyAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "phx_...",
            "description": "A personal API key (`phx_…`), also accepted as `personal_api_key` in the body or query.",
        }
