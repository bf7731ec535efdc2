"""Request validation and response shape of the experiments API (PostHog's ExperimentSerializer, §3)."""

from rest_framework import serializers

from events.selectors import unknown_event_names
from experiments import messages
from experiments.api.serializers.representation import (
    USER_ACCESS_LEVEL,
    ExperimentRowsSerializer,
    saved_metric_query,
    shown_metrics,
    shown_parameters,
)
from experiments.api.serializers.typed_json import MetricListField, ParametersField, StatsConfigField
from experiments.definitions import experiment as experiment_definitions
from experiments.definitions.bandit import (
    BanditProblem,
    is_primary_link,
    ordered_primary_metrics,
    parse_bandit,
    refuse_quantile_metrics,
)
from experiments.definitions.fingerprint import FINGERPRINT_SETTINGS
from experiments.definitions.metric import metric_event_names, validate_experiment_metrics
from experiments.models import (
    Experiment,
    ExperimentConclusion,
    ExperimentHoldout,
    ExperimentSavedMetric,
    ExperimentToSavedMetric,
    ExperimentType,
)
from experiments_api.serializers import (
    FastReadMixin,
    JSONObjectField,
    JSONObjectListField,
    JSONStringListField,
    UserBasicSerializer,
)
from flags.models import FeatureFlag


class ExperimentFeatureFlagSerializer(FastReadMixin, serializers.ModelSerializer):
    """PostHog's minimal flag object embedded in an experiment."""

    team_id = serializers.IntegerField(source="project_id", read_only=True)
    has_encrypted_payloads = serializers.SerializerMethodField()

    class Meta:
        model = FeatureFlag
        fields = [
            "id",
            "team_id",
            "name",
            "key",
            "filters",
            "deleted",
            "active",
            "ensure_experience_continuity",
            "has_encrypted_payloads",
            "version",
            "evaluation_runtime",
            "evaluation_tags",
        ]
        read_only_fields = fields

    def get_has_encrypted_payloads(self, flag: FeatureFlag) -> bool:
        return False


class ExperimentHoldoutSummarySerializer(FastReadMixin, serializers.ModelSerializer):
    created_by = UserBasicSerializer(read_only=True, allow_null=True)

    class Meta:
        model = ExperimentHoldout
        fields = ["id", "name", "description", "filters", "created_by", "created_at", "updated_at"]
        read_only_fields = fields


class ExperimentToSavedMetricSerializer(FastReadMixin, serializers.ModelSerializer):
    """A saved-metric link; `query.fingerprint` is computed for the experiment's current settings."""

    query = serializers.SerializerMethodField()
    name = serializers.CharField(source="saved_metric.name", read_only=True)

    class Meta:
        model = ExperimentToSavedMetric
        fields = ["id", "experiment", "saved_metric", "metadata", "created_at", "query", "name"]
        read_only_fields = fields

    def get_query(self, link: ExperimentToSavedMetric) -> dict:
        experiment = link.experiment
        return saved_metric_query(
            link.saved_metric.query, {name: getattr(experiment, name) for name in (*FINGERPRINT_SETTINGS, "end_date")}
        )


class ExperimentSerializer(FastReadMixin, serializers.ModelSerializer):
    feature_flag_key = serializers.CharField(source="feature_flag.key", max_length=400)
    feature_flag = ExperimentFeatureFlagSerializer(read_only=True)
    holdout = ExperimentHoldoutSummarySerializer(read_only=True, allow_null=True)
    holdout_id = serializers.PrimaryKeyRelatedField(
        queryset=ExperimentHoldout.objects.all(), source="holdout", allow_null=True, required=False
    )
    exposure_cohort = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    saved_metrics = ExperimentToSavedMetricSerializer(source="saved_metric_links", many=True, read_only=True)
    saved_metrics_ids = JSONObjectListField(write_only=True, required=False, allow_null=True, initial=list)
    created_by = UserBasicSerializer(read_only=True, allow_null=True)
    parameters = ParametersField(required=False, allow_null=True, initial=dict)
    filters = JSONObjectField(required=False, initial=dict)
    secondary_metrics = JSONObjectListField(required=False, allow_null=True, initial=list)
    exposure_criteria = JSONObjectField(required=False, allow_null=True, initial=dict)
    metrics = MetricListField(required=False, initial=list)
    metrics_secondary = MetricListField(required=False, initial=list)
    stats_config = StatsConfigField(required=False, initial=dict)
    scheduling_config = JSONObjectField(required=False, allow_null=True, initial=dict)
    primary_metrics_ordered_uuids = JSONStringListField(required=False, allow_null=True, initial=list)
    secondary_metrics_ordered_uuids = JSONStringListField(required=False, allow_null=True, initial=list)
    type = serializers.ChoiceField(
        choices=ExperimentType.choices, required=False, allow_null=True, initial=ExperimentType.PRODUCT
    )
    conclusion = serializers.ChoiceField(choices=ExperimentConclusion.choices, required=False, allow_null=True)
    conclusion_comment = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=4000)
    status = serializers.CharField(read_only=True)
    user_access_level = serializers.SerializerMethodField()
    allow_unknown_events = serializers.BooleanField(write_only=True, required=False, default=False)
    update_feature_flag_params = serializers.BooleanField(write_only=True, required=False, default=False)
    _create_in_folder = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=400)

    class Meta:
        model = Experiment
        fields = [
            "id",
            "name",
            "description",
            "start_date",
            "end_date",
            "feature_flag_key",
            "feature_flag",
            "holdout",
            "holdout_id",
            "exposure_cohort",
            "parameters",
            "secondary_metrics",
            "saved_metrics",
            "saved_metrics_ids",
            "filters",
            "archived",
            "deleted",
            "created_by",
            "created_at",
            "updated_at",
            "type",
            "exposure_criteria",
            "metrics",
            "metrics_secondary",
            "stats_config",
            "scheduling_config",
            "_create_in_folder",
            "conclusion",
            "conclusion_comment",
            "primary_metrics_ordered_uuids",
            "secondary_metrics_ordered_uuids",
            "only_count_matured_users",
            "allow_unknown_events",
            "update_feature_flag_params",
            "status",
            "user_access_level",
        ]
        read_only_fields = [
            "id",
            "created_by",
            "created_at",
            "updated_at",
            "feature_flag",
            "exposure_cohort",
            "holdout",
            "saved_metrics",
            "status",
            "user_access_level",
        ]
        list_serializer_class = ExperimentRowsSerializer  # the list's rows (experiment_list_rows), not instances
        extra_kwargs = {"description": {"allow_null": True, "allow_blank": True}}

    def get_fields(self):
        fields = super().get_fields()
        project = self.context.get("project")
        if project is not None:
            fields["holdout_id"].queryset = ExperimentHoldout.objects.filter(project=project)
        return fields

    def get_user_access_level(self, experiment: Experiment) -> str:
        """Every project member may edit (there is no per-resource access control here)."""
        return USER_ACCESS_LEVEL

    def validate_parameters(self, value):
        return experiment_definitions.validate_parameters(value)

    def validate_exposure_criteria(self, value):
        return experiment_definitions.validate_exposure_criteria(value)

    def validate_stats_config(self, value):
        return experiment_definitions.validate_stats_config(value)

    def validate_saved_metrics_ids(self, value):
        items = experiment_definitions.validate_saved_metrics_ids(value)
        if items:
            ids = {item["id"] for item in items}
            found = ExperimentSavedMetric.objects.filter(project=self.context["project"], pk__in=ids).count()
            if found != len(ids):
                raise serializers.ValidationError(messages.SAVED_METRIC_DOES_NOT_EXIST)
        return items

    def validate_metrics(self, value):
        return validate_experiment_metrics(value, attr="metrics")

    def validate_metrics_secondary(self, value):
        return validate_experiment_metrics(value, attr="metrics_secondary")

    def validate_filters(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError(messages.FILTERS_NOT_OBJECT)
        return value

    def validate_secondary_metrics(self, value):
        if value is not None and not isinstance(value, list):
            raise serializers.ValidationError(messages.SECONDARY_METRICS_NOT_LIST)
        return value

    def validate_scheduling_config(self, value):
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError(messages.SCHEDULING_CONFIG_NOT_OBJECT)
        return value

    def validate_primary_metrics_ordered_uuids(self, value):
        return experiment_definitions.validate_ordered_uuids(value, "primary_metrics_ordered_uuids")

    def validate_secondary_metrics_ordered_uuids(self, value):
        return experiment_definitions.validate_ordered_uuids(value, "secondary_metrics_ordered_uuids")

    def validate(self, attrs):
        start_date, end_date = attrs.get("start_date"), attrs.get("end_date")
        if start_date and end_date and start_date >= end_date:
            raise serializers.ValidationError(messages.END_BEFORE_START)
        if not attrs.get("allow_unknown_events"):
            for field in ("metrics", "metrics_secondary"):
                names = [name for metric in attrs.get(field) or [] for name in metric_event_names(metric)]
                unknown = unknown_event_names(project=self.context["project"], names=names) if names else []
                if unknown:
                    quoted = ", ".join(f"'{name}'" for name in unknown)
                    raise serializers.ValidationError({field: [messages.UNKNOWN_EVENTS.format(events=quoted)]})
        self._validate_bandit(attrs)
        return attrs

    def _merged(self, attrs: dict, field: str):
        """The field as it will be stored: the request's value, else the experiment's."""
        if field in attrs:
            return attrs[field]
        return getattr(self.instance, field, None)

    def _validate_bandit(self, attrs: dict) -> None:
        """A bandit's settings and their requirements on the stats method, exposure handling and metrics."""
        if self._merged(attrs, "type") != ExperimentType.BANDIT:
            return
        parameters = self._merged(attrs, "parameters")
        variants = (parameters or {}).get("feature_flag_variants")
        if not variants and self.instance is not None:
            variants = self.instance.feature_flag.variants
        if "saved_metrics_ids" in attrs or self.instance is None:
            items = attrs.get("saved_metrics_ids") or []
            queries = dict(
                ExperimentSavedMetric.objects.filter(
                    project=self.context["project"], pk__in=[item["id"] for item in items]
                ).values_list("pk", "query")
            )
            linked = [
                (queries[item["id"]], item.get("metadata"))
                for item in sorted(items, key=lambda item: item["id"])
                if item["id"] in queries
            ]
        else:
            links = self.instance.saved_metric_links.select_related("saved_metric").order_by("pk")
            linked = [(link.saved_metric.query, link.metadata) for link in links]
        saved = [query for query, metadata in linked if is_primary_link(metadata)]
        primary_metrics = ordered_primary_metrics(
            self._merged(attrs, "metrics") or [], saved, self._merged(attrs, "primary_metrics_ordered_uuids")
        )
        try:
            refuse_quantile_metrics(
                {
                    "metrics": self._merged(attrs, "metrics") or [],
                    "metrics_secondary": self._merged(attrs, "metrics_secondary") or [],
                    "saved_metrics_ids": [query for query, _metadata in linked],
                }
            )
            parse_bandit(
                parameters=parameters,
                stats_config=self._merged(attrs, "stats_config"),
                exposure_criteria=self._merged(attrs, "exposure_criteria"),
                primary_metrics=primary_metrics,
                variant_count=len(variants) if variants else 2,
            )
        except BanditProblem as problem:
            raise serializers.ValidationError({problem.attr: [problem.message]}) from None

    def to_representation(self, experiment: Experiment) -> dict:
        data = super().to_representation(experiment)
        for field in ("metrics", "metrics_secondary"):
            data[field] = shown_metrics(data[field], start_date=experiment.start_date, end_date=experiment.end_date)
        data["parameters"] = shown_parameters(data["parameters"])
        return data


class DuplicateExperimentSerializer(serializers.Serializer):
    feature_flag_key = serializers.CharField(required=False, max_length=400)
    name = serializers.CharField(required=False, max_length=400)


class ExposureCohortParamsSerializer(serializers.Serializer):
    # A static copy: the users exposed so far, fixed now, instead of a cohort recalculated over time.
    is_static = serializers.BooleanField(required=False, default=False)
