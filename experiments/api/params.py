"""Query-parameter parsing for the eligible-flags and requires_flag_implementation endpoints (the experiments list
has its FilterSet in experiments/filters.py)."""

from rest_framework import serializers

from experiments import messages
from experiments.selectors import DEFAULT_ORDER, ELIGIBLE_FLAG_ORDER_FIELDS

TRUE_VALUES = ("true", "1", "yes")
ELIGIBLE_FLAGS_DEFAULT_LIMIT = 20
ELIGIBLE_FLAGS_MAX_LIMIT = 100


def _validate_order(value: str, allowed: tuple[str, ...]) -> str:
    if value.lstrip("-") not in allowed or value.count("-") > 1:
        raise serializers.ValidationError(messages.INVALID_ORDER_FIELD.format(order=value))
    return value


class IntegerParamField(serializers.IntegerField):
    """An integer query parameter whose error names the parameter, as PostHog does for feature_flag_id."""

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__(required=False, **kwargs)
        self.error_messages["invalid"] = messages.MUST_BE_INTEGER.format(name=name)


class EligibleFlagsParamsSerializer(serializers.Serializer):
    """Limit and offset are validated by the view (PostHog answers them with a plain `{"error": ...}` body)."""

    search = serializers.CharField(required=False, allow_blank=True)
    active = serializers.CharField(required=False)
    created_by_id = IntegerParamField("created_by_id")
    evaluation_runtime = serializers.CharField(required=False)
    has_evaluation_tags = serializers.CharField(required=False)
    order = serializers.CharField(required=False, default=DEFAULT_ORDER)

    def validate_active(self, value: str) -> bool:
        return value.lower() == "true"

    def validate_has_evaluation_tags(self, value: str) -> bool:
        return value.lower() in TRUE_VALUES

    def validate_order(self, value: str) -> str:
        return _validate_order(value, ELIGIBLE_FLAG_ORDER_FIELDS)


def parse_eligible_flags_page(query_params) -> tuple[int, int] | None:
    """(limit, offset) with limit capped at 100 and a negative offset clamped to 0; None when not integers."""
    try:
        limit = int(query_params.get("limit", ELIGIBLE_FLAGS_DEFAULT_LIMIT))
        offset = int(query_params.get("offset", 0))
    except ValueError:
        return None
    return max(1, min(limit, ELIGIBLE_FLAGS_MAX_LIMIT)), max(offset, 0)


MAX_ENTITIES = 50


class EntityListField(serializers.JSONField):
    """A JSON-encoded list of insight entities (`[{"id": "$pageview", "type": "events"}]`) in a query parameter."""

    def __init__(self, **kwargs) -> None:
        super().__init__(binary=True, required=False, **kwargs)

    def to_internal_value(self, data):
        entities = super().to_internal_value(data)
        if not isinstance(entities, list) or not all(isinstance(entity, dict) for entity in entities):
            raise serializers.ValidationError(messages.ENTITY_LIST_INVALID)
        if len(entities) > MAX_ENTITIES:
            raise serializers.ValidationError(messages.ENTITY_LIST_TOO_LONG.format(limit=MAX_ENTITIES))
        return entities


class RequiresFlagImplementationParamsSerializer(serializers.Serializer):
    events = EntityListField()
    actions = EntityListField()

    def event_names(self) -> list[str]:
        """Names of the event entities. Actions are accepted but expand to nothing: this server has no actions."""
        return [entity["id"] for entity in self.validated_data.get("events", []) if isinstance(entity.get("id"), str)]
