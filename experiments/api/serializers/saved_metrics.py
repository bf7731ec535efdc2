"""Saved metric request and response shapes: `query` is one ExperimentMetric (api.md §5.1)."""

from rest_framework import serializers

from experiments import messages
from experiments.api.serializers.typed_json import MetricField
from experiments.definitions.metric import validate_experiment_metric
from experiments.models import ExperimentSavedMetric
from experiments_api.exceptions import DomainError
from experiments_api.serializers import JSONObjectField, UserBasicSerializer
from flags.serializers import TAG_MAX_LENGTH


class ExperimentSavedMetricSerializer(serializers.ModelSerializer):
    query = MetricField(initial=dict)
    metadata = JSONObjectField(required=False, allow_null=True, initial=dict)
    tags = serializers.ListField(child=serializers.CharField(max_length=TAG_MAX_LENGTH), required=False)
    created_by = UserBasicSerializer(read_only=True, allow_null=True)

    class Meta:
        model = ExperimentSavedMetric
        fields = ["id", "name", "description", "query", "metadata", "tags", "created_by", "created_at", "updated_at"]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]

    def validate_query(self, query: object) -> dict:
        try:
            return validate_experiment_metric(query)
        except DomainError as error:
            raise serializers.ValidationError(error.message, code=error.code) from None

    def validate_metadata(self, metadata: object) -> dict | None:
        if metadata is not None and not isinstance(metadata, dict):
            raise serializers.ValidationError(messages.METADATA_NOT_OBJECT)
        return metadata
