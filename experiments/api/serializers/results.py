"""Response shapes of the results endpoints (timeseries, recalculations, query kinds), for the OpenAPI schema.

The views answer plain dicts built by `experiments.results`; these serializers only document them, and the test
suite checks every response against the schema they produce. Result objects are closed (`ClosedSchema`): a key the
engine adds without declaring it here fails that check.
"""

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from experiments.api.serializers.typed_json import MetricField
from experiments.models import ACTIVE_RECALCULATION_STATUSES, RecalculationStatus, RecalculationTrigger
from experiments.results.query import EXPERIMENT_QUERY, EXPOSURE_QUERY
from experiments.stats.health_checks import HEALTH_STATUSES, MESSAGES, SEVERITIES
from experiments.stats.multiple_testing import MULTIPLE_TESTING_METHODS
from experiments_api.schema import ClosedSchema

# Named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"], so generated SDKs get one readable enum per choice set.
TIMESERIES_STATUSES = ["pending", "failed", "completed", "partial"]


class SampleRatioMismatchSerializer(ClosedSchema, serializers.Serializer):
    p_value = serializers.FloatField()
    mismatch = serializers.BooleanField()
    sufficient_data = serializers.BooleanField()


class VariantResultSerializer(ClosedSchema, serializers.Serializer):
    """A variant's sums, the failures that keep it from being tested, and the configured test's inference."""

    key = serializers.CharField()
    number_of_samples = serializers.IntegerField()
    sum = serializers.FloatField(
        required=False,
        help_text="Absent for unit-level quantile metrics; for event-level ones, the sum over units of their events "
        "at or below the variant's quantile (and the denominator fields sum their events).",
    )
    sum_squares = serializers.FloatField(required=False)
    denominator_sum = serializers.FloatField(required=False)
    denominator_sum_squares = serializers.FloatField(required=False)
    numerator_denominator_sum_product = serializers.FloatField(required=False)
    step_counts = serializers.ListField(child=serializers.IntegerField(), required=False)
    quantile_level = serializers.FloatField(required=False)
    quantile_n = serializers.IntegerField(required=False)
    quantile = serializers.FloatField(required=False, allow_null=True)
    quantile_lower = serializers.FloatField(required=False, allow_null=True)
    quantile_upper = serializers.FloatField(required=False, allow_null=True)
    quantile_nstar = serializers.IntegerField(required=False, allow_null=True)
    n_clusters = serializers.IntegerField(required=False, help_text="Event-level quantiles: the units with events.")
    validation_failures = serializers.ListField(child=serializers.CharField())
    method = serializers.ChoiceField(choices=["bayesian", "frequentist"], required=False)
    chance_to_win = serializers.FloatField(required=False)
    credible_interval = serializers.ListField(child=serializers.FloatField(), required=False)
    effect = serializers.FloatField(
        required=False, help_text="Frequentist: the estimated effect (relative or absolute, as `stats_config` says)."
    )
    p_value = serializers.FloatField(required=False)
    confidence_interval = serializers.ListField(
        child=serializers.FloatField(allow_null=True),
        required=False,
        help_text="A one-sided test's open end is null.",
    )
    p_value_adjusted = serializers.FloatField(
        required=False,
        help_text="Corrected across the experiment's family (`experiment_wide_correction`), or across segments × "
        "test variants in `breakdown_results`; `significant` then uses it.",
    )
    confidence_interval_adjusted = serializers.ListField(
        child=serializers.FloatField(allow_null=True),
        required=False,
        help_text="The interval widened to match `p_value_adjusted` (GrowthBook's method); open ends are null.",
    )
    significant = serializers.BooleanField(required=False)


class ExperimentWideCorrectionSerializer(ClosedSchema, serializers.Serializer):
    """`stats_config.multiple_testing`: the p-values of every primary (and with `include_secondary` secondary)
    metric × test variant corrected together, from the family's results of the same day."""

    method = serializers.ChoiceField(choices=MULTIPLE_TESTING_METHODS)
    tests = serializers.IntegerField(help_text="The family's size: its tested metric × variant pairs.")
    metric_uuids = serializers.ListField(child=serializers.CharField(), help_text="The family's metrics.")
    missing_metric_uuids = serializers.ListField(
        child=serializers.CharField(),
        help_text="Family metrics without a result that day: their tests count as p = 1 (conservative).",
    )


class HealthFindingSerializer(ClosedSchema, serializers.Serializer):
    code = serializers.ChoiceField(choices=list(MESSAGES))
    severity = serializers.ChoiceField(choices=SEVERITIES)
    message = serializers.CharField()


class HealthSampleRatioMismatchSerializer(ClosedSchema, serializers.Serializer):
    """Chi-square test of the units per variant against the flag's split (a bandit's: its changing weights)."""

    p_value = serializers.FloatField()
    expected = serializers.DictField(child=serializers.FloatField(), help_text="Expected units per variant.")
    observed = serializers.DictField(child=serializers.IntegerField(), help_text="Units per variant.")
    status = serializers.ChoiceField(
        choices=HEALTH_STATUSES, help_text="not-enough-traffic below 8 units per variant; unhealthy at p < 0.001."
    )


class MultipleExposuresSerializer(ClosedSchema, serializers.Serializer):
    count = serializers.IntegerField(help_text="Units exposed to more than one variant.")
    share = serializers.FloatField(help_text="Their share of all exposed units.")
    status = serializers.ChoiceField(
        choices=HEALTH_STATUSES, help_text="not-enough-traffic below 10 units; unhealthy from a 1% share."
    )


class ResultHealthSerializer(ClosedSchema, serializers.Serializer):
    """The health checks of a result, most severe finding first."""

    findings = HealthFindingSerializer(many=True)
    srm = HealthSampleRatioMismatchSerializer(allow_null=True, help_text="Null with fewer than two variants.")
    multiple_exposures = MultipleExposuresSerializer()


class BreakdownResultSerializer(ClosedSchema, serializers.Serializer):
    """One segment analysed as its own A/B test; frequentist p-values are corrected across segments × test variants
    (`p_value_adjusted`)."""

    breakdown_value = serializers.ListField(
        child=serializers.CharField(),
        help_text="The segment's value of each breakdown, in breakdowns order ($$_posthog_breakdown_null_$$ for no "
        "value, $$_posthog_breakdown_other_$$ for the segments grouped beyond the top ones).",
    )
    baseline = VariantResultSerializer()
    variant_results = VariantResultSerializer(many=True)
    exploratory = serializers.BooleanField(help_text="Always true: segments are for exploration, not decisions.")


class MetricResultSerializer(ClosedSchema, serializers.Serializer):
    baseline = VariantResultSerializer()
    variant_results = VariantResultSerializer(many=True)
    breakdown_results = BreakdownResultSerializer(
        many=True, required=False, help_text="Present for a metric with `breakdownFilter.breakdowns`."
    )
    sample_ratio_mismatch = SampleRatioMismatchSerializer(allow_null=True)
    health = ResultHealthSerializer(required=False, help_text="Absent from results stored before health checks.")
    experiment_wide_correction = ExperimentWideCorrectionSerializer(
        required=False, help_text="Present for a metric of the experiment-wide correction's family."
    )


class TimeseriesResultsSerializer(serializers.Serializer):
    experiment_id = serializers.IntegerField()
    metric_uuid = serializers.CharField()
    status = serializers.ChoiceField(choices=TIMESERIES_STATUSES)
    timeseries = serializers.DictField(
        child=MetricResultSerializer(allow_null=True), help_text="Day (YYYY-MM-DD) → result, null where not computed."
    )
    errors = serializers.DictField(child=serializers.CharField(), allow_null=True)
    computed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    recalculation_status = serializers.ChoiceField(choices=ACTIVE_RECALCULATION_STATUSES, allow_null=True)
    recalculation_created_at = serializers.DateTimeField(allow_null=True)


class RecalculationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    experiment_id = serializers.IntegerField()
    metric_uuid = serializers.CharField(allow_null=True)
    fingerprint = serializers.CharField()
    status = serializers.ChoiceField(choices=ACTIVE_RECALCULATION_STATUSES)
    created_at = serializers.DateTimeField()


class MetricsRecalculationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    experiment_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=RecalculationStatus.choices)
    total_metrics = serializers.IntegerField()
    completed_metrics = serializers.IntegerField()
    failed_metrics = serializers.IntegerField()
    metric_errors = serializers.DictField(child=serializers.CharField())
    trigger = serializers.ChoiceField(choices=RecalculationTrigger.choices)
    created_at = serializers.DateTimeField()


class ExperimentQueryResultSerializer(MetricResultSerializer):
    kind = serializers.ChoiceField(choices=[EXPERIMENT_QUERY])
    metric = MetricField()


class ExposureSeriesSerializer(serializers.Serializer):
    variant = serializers.CharField()
    days = serializers.ListField(child=serializers.DateField())
    exposure_counts = serializers.ListField(child=serializers.IntegerField(), help_text="Cumulative, per day.")


class ExposureDateRangeSerializer(serializers.Serializer):
    date_from = serializers.DateTimeField()
    date_to = serializers.DateTimeField(allow_null=True)


class ExposureSampleRatioMismatchSerializer(serializers.Serializer):
    expected = serializers.DictField(child=serializers.FloatField())
    p_value = serializers.FloatField()


class ExperimentExposureQueryResultSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[EXPOSURE_QUERY])
    timeseries = ExposureSeriesSerializer(many=True)
    total_exposures = serializers.DictField(child=serializers.IntegerField())
    date_range = ExposureDateRangeSerializer()
    sample_ratio_mismatch = ExposureSampleRatioMismatchSerializer(allow_null=True)


QUERY_RESULT = PolymorphicProxySerializer(
    component_name="QueryResult",
    serializers={
        EXPERIMENT_QUERY: ExperimentQueryResultSerializer,
        EXPOSURE_QUERY: ExperimentExposureQueryResultSerializer,
    },
    resource_type_field_name="kind",
)
