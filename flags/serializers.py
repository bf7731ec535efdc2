"""Request validation and response shape of feature flags and cohorts (saving happens in flags.services)."""

import re

from rest_framework import serializers

from experiments_api.serializers import JSONObjectField, UserBasicSerializer
from flags import messages
from flags.models import FLAG_KEY_PATTERN, Cohort, EvaluationRuntime, FeatureFlag
from flags.selectors import behavioral_cohort_in_flag_filters
from flags.validators import validate_cohort_filters, validate_flag_filters

FLAG_NAME_MAX_LENGTH = 4000
TAG_MAX_LENGTH = 255
MAX_STATIC_PERSON_IDS = 10_000
# PostHog's limit on one add_persons_to_static_cohort call.
MAX_PERSONS_PER_ADD = 1000


class CreationContext:
    """Where a flag was created from; experiments create theirs with EXPERIMENTS."""

    FEATURE_FLAGS = "feature_flags"
    EXPERIMENTS = "experiments"
    SURVEYS = "surveys"
    EARLY_ACCESS_FEATURES = "early_access_features"
    WEB_EXPERIMENTS = "web_experiments"
    PRODUCT_TOURS = "product_tours"

    choices = [FEATURE_FLAGS, EXPERIMENTS, SURVEYS, EARLY_ACCESS_FEATURES, WEB_EXPERIMENTS, PRODUCT_TOURS]


def duplicate_flag_key_error() -> serializers.ValidationError:
    """The error for a key already used by a live flag of the project, raised by validation and by the services."""
    return serializers.ValidationError({"key": [serializers.ErrorDetail(messages.DUPLICATE_FLAG_KEY, code="unique")]})


class FeatureFlagSerializer(serializers.ModelSerializer):
    """The full flag. Validation needs `context["project"]`.

    Serialize querysets from flags.selectors.feature_flags_for_serializer, else each flag costs a query for
    its experiment_set.
    """

    key = serializers.CharField(max_length=FeatureFlag._meta.get_field("key").max_length)
    name = serializers.CharField(max_length=FLAG_NAME_MAX_LENGTH, allow_blank=True, required=False)
    filters = JSONObjectField(required=False, initial=dict)
    evaluation_runtime = serializers.ChoiceField(choices=EvaluationRuntime.choices, required=False)
    creation_context = serializers.ChoiceField(choices=CreationContext.choices, required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=TAG_MAX_LENGTH), required=False)
    evaluation_tags = serializers.ListField(child=serializers.CharField(max_length=TAG_MAX_LENGTH), required=False)
    created_by = UserBasicSerializer(read_only=True, allow_null=True)
    last_modified_by = UserBasicSerializer(read_only=True, allow_null=True)
    experiment_set = serializers.SerializerMethodField()

    class Meta:
        model = FeatureFlag
        fields = [
            "id",
            "key",
            "name",
            "filters",
            "active",
            "deleted",
            "ensure_experience_continuity",
            "evaluation_runtime",
            "tags",
            "evaluation_tags",
            "version",
            "creation_context",
            "experiment_set",
            "created_by",
            "created_at",
            "last_modified_by",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "created_at", "updated_at"]
        # Key uniqueness among live flags is checked in validate() and by the database constraint.
        validators: list = []

    def get_experiment_set(self, flag: FeatureFlag) -> list[int]:
        """Ids of the live experiments on the flag, from the prefetch of flags.selectors when present."""
        live_experiments = getattr(flag, "live_experiments", None)
        if live_experiments is None:
            return list(flag.experiments.alive().order_by("id").values_list("id", flat=True))
        return [experiment.id for experiment in live_experiments]

    def validate_key(self, key: str) -> str:
        if not re.fullmatch(FLAG_KEY_PATTERN, key):
            raise serializers.ValidationError(messages.INVALID_FLAG_KEY, code="invalid_key")
        return key

    def validate_filters(self, filters: object) -> dict:
        filters = validate_flag_filters(filters)
        project = self.context.get("project")
        if project is not None:
            cohort = behavioral_cohort_in_flag_filters(project_id=project.pk, filters=filters)
            if cohort is not None:
                raise serializers.ValidationError(
                    messages.BEHAVIORAL_COHORT_IN_FLAG.format(name=cohort.name), code="behavioral_cohort_found"
                )
        return filters

    def validate(self, attrs: dict) -> dict:
        """A live flag's key must be unique in the project: on create, on a key change and on restore."""
        key = attrs.get("key", getattr(self.instance, "key", None))
        deleted = attrs.get("deleted", getattr(self.instance, "deleted", False))
        if not deleted:
            clashes = FeatureFlag.objects.alive().filter(project=self.context["project"], key=key)
            if self.instance is not None:
                clashes = clashes.exclude(pk=self.instance.pk)
            if clashes.exists():
                raise duplicate_flag_key_error()
        return attrs


class CohortSerializer(serializers.ModelSerializer):
    created_by = UserBasicSerializer(read_only=True, allow_null=True)
    filters = JSONObjectField(required=False, initial=dict)
    # Person uuids that become the members of a static cohort (unknown ones are ignored).
    _create_static_person_ids = serializers.ListField(
        child=serializers.UUIDField(), write_only=True, required=False, max_length=MAX_STATIC_PERSON_IDS
    )

    class Meta:
        model = Cohort
        fields = [
            "id",
            "name",
            "description",
            "filters",
            "is_static",
            "is_calculating",
            "deleted",
            "count",
            "last_calculation",
            "errors_calculating",
            "created_by",
            "created_at",
            "updated_at",
            "_create_static_person_ids",
        ]
        read_only_fields = [
            "id",
            "is_calculating",
            "count",
            "last_calculation",
            "errors_calculating",
            "created_by",
            "created_at",
            "updated_at",
        ]

    def validate_filters(self, filters: object) -> dict:
        return validate_cohort_filters(filters)


class LocalEvaluationFlagSerializer(serializers.Serializer):
    """A flag definition as SDKs evaluate it locally (a holdout appears as `filters.holdout`)."""

    id = serializers.IntegerField()
    team_id = serializers.IntegerField()
    key = serializers.CharField()
    name = serializers.CharField()
    filters = serializers.DictField()
    active = serializers.BooleanField()
    deleted = serializers.BooleanField()
    version = serializers.IntegerField()
    ensure_experience_continuity = serializers.BooleanField()


class LocalEvaluationSerializer(serializers.Serializer):
    flags = LocalEvaluationFlagSerializer(many=True)
    group_type_mapping = serializers.DictField(child=serializers.CharField())
    cohorts = serializers.DictField()


class StaticCohortPersonsSerializer(serializers.Serializer):
    person_ids = serializers.ListField(child=serializers.UUIDField(), allow_empty=False, max_length=MAX_PERSONS_PER_ADD)


class StaticCohortPersonSerializer(serializers.Serializer):
    person_id = serializers.UUIDField()
