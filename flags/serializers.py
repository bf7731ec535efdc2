"""Request validation and response shape of feature flags and cohorts (saving happens in flags.services)."""

from rest_framework import serializers

from experiments_api.serializers import JSONObjectField, UserBasicSerializer
from flags.models import Cohort, CreationContext, EvaluationRuntime, FeatureFlag
from flags.validators import validate_cohort_filters
from persons import messages as person_messages
from persons.cohort_csv import MAX_CSV_BYTES, CohortCSV, CohortCSVError, parse_cohort_csv

FLAG_NAME_MAX_LENGTH = 4000
TAG_MAX_LENGTH = 255
MAX_STATIC_PERSON_IDS = 10_000
# PostHog's limit on one add_persons_to_static_cohort call.
MAX_PERSONS_PER_ADD = 1000


class FeatureFlagSerializer(serializers.ModelSerializer):
    """The full flag. Its shape is checked here; the key, the filters and the project's rules are the flags
    services' (they raise domain errors on `key` and `filters`).

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


class CohortWriteSerializer(CohortSerializer):
    """A cohort write as a multipart form: the cohort's fields (`filters` as JSON text) and a static cohort's
    persons as a `csv` file. The file is read with the request (a bad one is a 400 and nothing is written); its
    persons are added by a task, and the cohort answers `is_calculating: true` until they are."""

    csv = serializers.FileField(
        write_only=True,
        required=False,
        allow_empty_file=True,
        help_text=(
            "A static cohort's persons (multipart only), UTF-8: one column of distinct ids (no header), of person "
            "uuids under `person_id`, or of emails under `email`; or several columns, one of them headed "
            f"`person_id`, `distinct_id` or `email`. Unknown ids are ignored. At most {MAX_CSV_BYTES // 2**20} MB."
        ),
    )

    class Meta(CohortSerializer.Meta):
        fields = [*CohortSerializer.Meta.fields, "csv"]

    def validate_csv(self, upload) -> CohortCSV:
        if upload.size > MAX_CSV_BYTES:  # before reading it
            raise serializers.ValidationError(person_messages.CSV_TOO_LARGE.format(megabytes=MAX_CSV_BYTES // 2**20))
        try:
            return parse_cohort_csv(upload.read())
        except CohortCSVError as error:
            raise serializers.ValidationError(str(error)) from None

    def validate(self, attrs: dict) -> dict:
        is_static = attrs.get("is_static", self.instance.is_static if self.instance is not None else False)
        if "csv" in attrs and not is_static:
            raise serializers.ValidationError({"csv": person_messages.CSV_NOT_STATIC})
        return attrs


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
