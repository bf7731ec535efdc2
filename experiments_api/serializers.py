"""Serializers shared by every app: the basic user object PostHog nests in `created_by` and similar fields, and
JSON fields the browsable API's HTML form can fill, typed for the OpenAPI schema (their content is checked by the
serializers' `validate_<field>`)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.utils import html

from experiments_api.models import User


class UserBasicSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = [
            "id",
            "uuid",
            "distinct_id",
            "first_name",
            "last_name",
            "email",
            "is_email_verified",
            "hedgehog_config",
            "role_at_organization",
        ]
        read_only_fields = fields


class FormJSONField(serializers.JSONField):
    """A JSON field for the browsable API's HTML form as well as JSON bodies.

    Give it `initial=list` or `initial=dict`: the form then shows an editable `[]` or `{}` instead of `null`. A
    field left blank in a form is treated as not sent, so the server's default applies. JSON bodies are unchanged.
    """

    def get_value(self, dictionary):
        if html.is_html_input(dictionary) and not str(dictionary.get(self.field_name, "")).strip():
            return empty
        return super().get_value(dictionary)


JSON_OBJECT_SCHEMA = {"type": "object", "additionalProperties": True}


@extend_schema_field(JSON_OBJECT_SCHEMA)
class JSONObjectField(FormJSONField):
    """A JSON object."""


@extend_schema_field({**JSON_OBJECT_SCHEMA, "type": ["object", "null"]})
class StoredJSONObjectField(FormJSONField):
    """A JSON object that requests must send, but that rows stored without one answer as null."""


@extend_schema_field({"type": "array", "items": JSON_OBJECT_SCHEMA})
class JSONObjectListField(FormJSONField):
    """A JSON list of objects."""


@extend_schema_field({"type": "string"})
class JSONStringField(FormJSONField):
    """A JSON string, kept as sent so the serializer can answer a non-string with its own message."""


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class JSONStringListField(FormJSONField):
    """A JSON list of strings."""
