"""Serializers shared by every app: the basic user object PostHog nests in `created_by` and similar fields, JSON
fields the browsable API's HTML form can fill, typed for the OpenAPI schema (their content is checked by the
serializers' `validate_<field>`), and a faster read path for model serializers that list many rows."""

import copy
import datetime
from functools import cached_property

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.fields import SkipField, empty
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings
from rest_framework.utils import html

from experiments_api.models import User

# A model column a DRF field returns unchanged: (DRF field, model fields, the value's type); any value for JSON.
_ANY_VALUE = object
_UNCHANGED_VALUES = (
    (serializers.JSONField, (models.JSONField,), _ANY_VALUE),
    (serializers.BooleanField, (models.BooleanField,), bool),
    (serializers.IntegerField, (models.IntegerField, models.AutoField), int),
    (serializers.ChoiceField, (models.CharField, models.TextField), str),
    (serializers.CharField, (models.CharField, models.TextField), str),
)
_DRF_LOOKUP = None  # a plan entry whose value DRF looks up itself
_ISO_DATETIME = object()  # a plan entry for a DateTimeField in DRF's default format: converted here


class FastReadMixin:
    """`to_representation` for model serializers that read many rows: DRF's output with less work per field.

    DRF calls `get_attribute` and `to_representation` on every field of every row, about 2 µs each, which was most
    of the time of a page of 50 experiments (the experiments list now reads rows instead, see
    experiments/api/serializers/representation.py; experiment responses and the users nested in lists still use it). Here each readable field's plan is worked out once per serializer: a
    field reading one model column that DRF returns as is (JSON, and strings, booleans and integers from columns of
    those types, and a PrimaryKeyRelatedField's foreign key) is copied; a field on any other single column (dates,
    uuids) is converted without the attribute lookup machinery; every other field (nested serializers, methods,
    dotted sources, other relations) goes through DRF as usual. A value of an unexpected type is converted by its
    field, so the output is always DRF's.
    """

    def get_fields(self) -> dict:
        """ModelSerializer's fields, built once per class (they depend only on the class) and copied per instance."""
        cls = type(self)
        template = cls.__dict__.get("_fields_template")
        if template is None:
            template = super().get_fields()
            cls._fields_template = template
        return copy.deepcopy(template)

    def to_representation(self, instance) -> dict:
        data = {}
        current_timezone = None
        for name, attribute, unchanged_type, field in self._read_plan:
            if attribute is _DRF_LOOKUP:
                try:
                    value = field.get_attribute(instance)
                except SkipField:
                    continue
                empty = (value.pk if isinstance(value, PKOnlyObject) else value) is None
                data[name] = None if empty else field.to_representation(value)
                continue
            value = getattr(instance, attribute)
            if value is None:
                data[name] = None
            elif unchanged_type is _ANY_VALUE or type(value) is unchanged_type:
                data[name] = value
            elif unchanged_type is _ISO_DATETIME and type(value) is datetime.datetime and value.tzinfo is not None:
                # DateTimeField.to_representation without its per-value settings and timezone lookups.
                current_timezone = current_timezone or timezone.get_current_timezone()
                text = value.astimezone(current_timezone).isoformat()
                data[name] = text[:-6] + "Z" if text.endswith("+00:00") else text
            else:
                data[name] = field.to_representation(value)
        return data

    @cached_property
    def _read_plan(self) -> list[tuple[str, str | None, type | None, serializers.Field]]:
        """(output name, model attribute or _DRF_LOOKUP, the type of values returned unchanged or None, field)."""
        plan = []
        for field in self._readable_fields:
            column = self._column(field)
            if column is None:
                plan.append((field.field_name, _DRF_LOOKUP, None, field))
                continue
            if column.is_relation:  # a PrimaryKeyRelatedField: the foreign key's value is DRF's output
                plan.append((field.field_name, column.attname, _ANY_VALUE, field))
                continue
            unchanged_type = next(
                (
                    value_type
                    for field_class, column_classes, value_type in _UNCHANGED_VALUES
                    if isinstance(field, field_class) and isinstance(column, column_classes)
                ),
                None,
            )
            if isinstance(field, serializers.JSONField) and field.binary:
                unchanged_type = None
            if self._is_default_datetime(field, column):
                unchanged_type = _ISO_DATETIME
            plan.append((field.field_name, column.attname, unchanged_type, field))
        return plan

    @staticmethod
    def _is_default_datetime(field: serializers.Field, column: models.Field) -> bool:
        """A DateTimeField on a datetime column, in the default ISO 8601 format and the current timezone."""
        return (
            type(field) is serializers.DateTimeField
            and isinstance(column, models.DateTimeField)
            and str(getattr(field, "format", api_settings.DATETIME_FORMAT)).lower() == ISO_8601
            and not hasattr(field, "timezone")
            and settings.USE_TZ
        )

    def _column(self, field: serializers.Field) -> models.Field | None:
        """The concrete model column that `field` reads, when it reads exactly one: not a relation, except the
        foreign key of a PrimaryKeyRelatedField (DRF outputs that column's value, the related object's pk)."""
        if type(field) is serializers.PrimaryKeyRelatedField:
            return self._foreign_key(field)
        if isinstance(field, serializers.BaseSerializer | serializers.SerializerMethodField | serializers.RelatedField):
            return None
        if isinstance(field, serializers.ManyRelatedField | serializers.ReadOnlyField) or len(field.source_attrs) != 1:
            return None
        try:
            column = self.Meta.model._meta.get_field(field.source_attrs[0])
        except FieldDoesNotExist:  # a property of the model
            return None
        return column if column.concrete and not column.is_relation else None

    def _foreign_key(self, field: serializers.PrimaryKeyRelatedField) -> models.ForeignKey | None:
        if field.pk_field is not None or len(field.source_attrs) != 1:
            return None
        try:
            column = self.Meta.model._meta.get_field(field.source_attrs[0])
        except FieldDoesNotExist:
            return None
        return column if column.many_to_one and column.concrete and column.target_field.primary_key else None


class UserBasicSerializer(FastReadMixin, serializers.ModelSerializer):
    class Meta:
        model = User
        fields = list(User.BASIC_FIELDS)
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
