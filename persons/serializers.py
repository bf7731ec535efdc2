"""Persons as PostHog's API shows them, and the bodies and query parameters its endpoints accept."""

import json
import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from persons.messages import PROPERTIES_NOT_LIST, PROPERTY_FILTER_INVALID, UNSET_KEY_INVALID
from persons.models import Person

# PostHog's default display-name properties, in order.
NAME_PROPERTIES = ("email", "Email", "$email", "name", "Name", "username", "Username", "UserName")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def sorted_distinct_ids(person: Person) -> list[str]:
    """Non-UUID ids first (the ones people recognise), each group in the order the ids joined."""
    ids = [row.distinct_id for row in sorted(person.distinct_ids.all(), key=lambda row: row.pk)]
    return sorted(ids, key=_is_uuid)


def display_name(person: Person, distinct_ids: list[str]) -> str:
    properties = person.properties or {}
    for key in NAME_PROPERTIES:
        if properties.get(key):
            return str(properties[key])
    return distinct_ids[0] if distinct_ids else str(person.pk)


class PersonSerializer(serializers.ModelSerializer):
    """A list item (PostHog's actor shape): `id` is the person's uuid."""

    type = serializers.SerializerMethodField()
    id = serializers.UUIDField(source="uuid", read_only=True)
    name = serializers.SerializerMethodField()
    distinct_ids = serializers.SerializerMethodField()
    matched_recordings = serializers.SerializerMethodField()
    value_at_data_point = serializers.SerializerMethodField()
    last_seen_at = serializers.SerializerMethodField()

    class Meta:
        model = Person
        fields = (
            "type",
            "id",
            "uuid",
            "created_at",
            "properties",
            "is_identified",
            "name",
            "distinct_ids",
            "matched_recordings",
            "value_at_data_point",
            "last_seen_at",
        )
        read_only_fields = fields

    def get_type(self, person: Person) -> str:
        return "person"

    def get_distinct_ids(self, person: Person) -> list[str]:
        ids = sorted_distinct_ids(person)
        limit = self.context.get("distinct_ids_limit")
        return ids[:limit] if limit else ids

    def get_name(self, person: Person) -> str:
        return display_name(person, sorted_distinct_ids(person))

    def get_matched_recordings(self, person: Person) -> list:
        return []

    @extend_schema_field({"type": ["number", "null"]})
    def get_value_at_data_point(self, person: Person) -> None:
        return None

    @extend_schema_field({"type": ["string", "null"], "format": "date-time"})
    def get_last_seen_at(self, person: Person) -> None:
        return None


class PersonDetailSerializer(PersonSerializer):
    """A retrieved person: `id` is the integer primary key, as in PostHog's retrieve."""

    id = serializers.IntegerField(source="pk", read_only=True)

    class Meta(PersonSerializer.Meta):
        fields = ("id", "name", "distinct_ids", "properties", "created_at", "uuid", "is_identified")
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.STR)
class PropertyFiltersField(serializers.Field):
    """A JSON list of person property filters (query string)."""

    def to_internal_value(self, data) -> list[dict]:
        try:
            filters = json.loads(data) if isinstance(data, str) else data
        except ValueError:
            raise serializers.ValidationError(PROPERTIES_NOT_LIST) from None
        if not isinstance(filters, list):
            raise serializers.ValidationError(PROPERTIES_NOT_LIST)
        for item in filters:
            operator = item.get("operator") if isinstance(item, dict) else None
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("key"), str)
                or (operator not in ("is_set", "is_not_set") and "value" not in item)
            ):
                raise serializers.ValidationError(PROPERTY_FILTER_INVALID)
        return [{"type": "person", **item} for item in filters]


class PersonListParamsSerializer(serializers.Serializer):
    distinct_id = serializers.CharField(required=False, max_length=400)
    email = serializers.CharField(required=False, max_length=400)
    search = serializers.CharField(required=False, max_length=400, allow_blank=True)
    properties = PropertyFiltersField(required=False)
    cohort = serializers.IntegerField(required=False, min_value=1)


class PersonDeleteParamsSerializer(serializers.Serializer):
    delete_events = serializers.BooleanField(required=False, default=False)


class PersonPropertiesSerializer(serializers.Serializer):
    properties = serializers.DictField()


class UpdatePropertySerializer(serializers.Serializer):
    # PostHog checks `value` before `key`.
    value = serializers.JSONField()
    key = serializers.CharField(max_length=400)


class DeletePropertySerializer(serializers.Serializer):
    unset = serializers.CharField(max_length=400, error_messages={"invalid": UNSET_KEY_INVALID})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["$unset"] = self.fields.pop("unset")
