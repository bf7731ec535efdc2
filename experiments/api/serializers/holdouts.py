"""Holdout request and response shapes: `filters` is a non-empty list of groups with a rollout percentage."""

from rest_framework import serializers

from experiments import messages
from experiments.models import ExperimentHoldout
from experiments_api.serializers import JSONObjectListField, UserBasicSerializer
from flags.validators import are_property_filters, is_percentage


class ExperimentHoldoutSerializer(serializers.ModelSerializer):
    filters = JSONObjectListField(initial=list)
    created_by = UserBasicSerializer(read_only=True, allow_null=True)

    class Meta:
        model = ExperimentHoldout
        fields = ["id", "name", "description", "filters", "created_by", "created_at", "updated_at"]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]

    def validate_filters(self, groups: object) -> list[dict]:
        """Each group needs a rollout_percentage from 0 to 100; `variant` is assigned by the services."""
        if not isinstance(groups, list) or not groups:
            raise serializers.ValidationError(messages.HOLDOUT_FILTERS_NOT_LIST)
        for index, group in enumerate(groups):
            if not isinstance(group, dict):
                raise serializers.ValidationError(messages.HOLDOUT_GROUP_NOT_OBJECT.format(index=index))
            if group.get("rollout_percentage") is None:
                raise serializers.ValidationError(messages.ROLLOUT_PERCENTAGE_MISSING)
            if not is_percentage(group["rollout_percentage"]):
                raise serializers.ValidationError(messages.ROLLOUT_PERCENTAGE_OUT_OF_RANGE)
            if not are_property_filters(group.get("properties", [])):
                raise serializers.ValidationError(messages.HOLDOUT_GROUP_PROPERTIES_NOT_LIST.format(index=index))
        return groups
