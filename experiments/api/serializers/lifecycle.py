"""Request bodies of the lifecycle actions and the running-time calculator, and the activity-log shape."""

import math

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from experiments import messages
from experiments.models import ExperimentActivity, ExperimentConclusion
from experiments_api.serializers import UserBasicSerializer


class ConclusionSerializer(serializers.Serializer):
    conclusion = serializers.ChoiceField(choices=ExperimentConclusion.choices, required=False, allow_null=True)
    conclusion_comment = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=4000)


class ShipVariantSerializer(ConclusionSerializer):
    variant_key = serializers.CharField(max_length=400)
    release_to_everyone = serializers.BooleanField(required=False, default=False)


class ArchiveSerializer(serializers.Serializer):
    disable_feature_flag = serializers.BooleanField(required=False, default=False)


class CopyToProjectSerializer(serializers.Serializer):
    """`target_team_id` is accepted as PostHog's older name for `target_project_id`."""

    target_project_id = serializers.IntegerField(required=False)
    target_team_id = serializers.IntegerField(required=False, write_only=True)
    feature_flag_key = serializers.CharField(required=False, max_length=400)
    name = serializers.CharField(required=False, max_length=400)

    def validate(self, attrs: dict) -> dict:
        target = attrs.pop("target_project_id", None) or attrs.pop("target_team_id", None)
        attrs.pop("target_team_id", None)
        if target is None:
            raise serializers.ValidationError({"target_project_id": [messages.TARGET_PROJECT_REQUIRED]})
        return {**attrs, "target_project_id": target}


class ActivitySerializer(serializers.ModelSerializer):
    user = UserBasicSerializer(read_only=True, allow_null=True)

    class Meta:
        model = ExperimentActivity
        fields = ["id", "activity", "user", "changes", "created_at"]
        read_only_fields = fields


class FiniteFloatField(serializers.FloatField):
    """A float that refuses NaN and ±infinity, which float() reads from strings such as "nan" or "Infinity"."""

    def to_internal_value(self, data) -> float:
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return value


RAW_BASELINE_FIELDS = ("n", "sum", "sum_squares")


@extend_schema_serializer(component_name="RunningTime")
class RunningTimeRequestSerializer(serializers.Serializer):
    """Inputs of the sample-size calculation; a baseline comes either as `baseline_value` (a conversion rate for
    funnels, a mean with `variance` otherwise) or as raw statistics `n`, `sum`, `sum_squares`, which win when
    both are given. Errors about a baseline derived from raw statistics name `sum` or `sum_squares`."""

    metric_type = serializers.ChoiceField(choices=["mean", "funnel", "ratio"])
    minimum_detectable_effect = FiniteFloatField()
    baseline_value = FiniteFloatField(required=False)
    variance = FiniteFloatField(required=False)
    n = serializers.IntegerField(required=False, min_value=2)
    sum = FiniteFloatField(required=False)
    sum_squares = FiniteFloatField(required=False, min_value=0)
    exposure_rate_per_day = FiniteFloatField(required=False)
    variants = serializers.IntegerField(required=False, default=2, min_value=2, max_value=20)
    alpha = FiniteFloatField(required=False, default=0.05)
    power = FiniteFloatField(required=False, default=0.8)

    def validate_minimum_detectable_effect(self, value: float) -> float:
        if value <= 0:
            raise serializers.ValidationError(messages.MDE_NOT_POSITIVE)
        return value

    def validate_alpha(self, value: float) -> float:
        if not 0 < value < 1:
            raise serializers.ValidationError(messages.NOT_A_PROBABILITY.format(name="alpha"))
        return value

    def validate_power(self, value: float) -> float:
        if not 0 < value < 1:
            raise serializers.ValidationError(messages.NOT_A_PROBABILITY.format(name="power"))
        return value

    def validate_exposure_rate_per_day(self, value: float) -> float:
        if value <= 0:
            raise serializers.ValidationError(messages.EXPOSURE_RATE_NOT_POSITIVE)
        return value

    def validate(self, attrs: dict) -> dict:
        missing_raw = [key for key in RAW_BASELINE_FIELDS if key not in attrs]
        if missing_raw and len(missing_raw) < len(RAW_BASELINE_FIELDS):
            raise serializers.ValidationError({missing_raw[0]: [messages.RAW_BASELINE_INCOMPLETE]}, code="required")
        if not missing_raw:
            n, total, squares = attrs["n"], attrs["sum"], attrs["sum_squares"]
            baseline, variance = total / n, (squares - total * total / n) / (n - 1)
            baseline_attr, variance_attr = "sum", "sum_squares"
        elif "baseline_value" in attrs:
            baseline, variance = attrs["baseline_value"], attrs.get("variance")
            baseline_attr, variance_attr = "baseline_value", "variance"
        else:
            raise serializers.ValidationError({"baseline_value": [messages.BASELINE_REQUIRED]}, code="required")

        if attrs["metric_type"] == "funnel":
            if not 0 < baseline < 1:
                raise serializers.ValidationError({baseline_attr: [messages.CONVERSION_RATE_OUT_OF_RANGE]})
            if baseline * (1 + attrs["minimum_detectable_effect"]) >= 1:
                raise serializers.ValidationError({"minimum_detectable_effect": [messages.MDE_TOO_LARGE_FOR_RATE]})
            variance = None
        elif variance is None:
            raise serializers.ValidationError({"variance": [messages.VARIANCE_REQUIRED]}, code="required")
        elif variance <= 0:
            raise serializers.ValidationError({variance_attr: [messages.VARIANCE_NOT_POSITIVE]})
        elif baseline == 0:
            raise serializers.ValidationError({baseline_attr: [messages.BASELINE_MEAN_ZERO]})
        return {**attrs, "baseline_value": baseline, "variance": variance}


class MidExperimentPowerParamsSerializer(serializers.Serializer):
    """Query parameters of `power`: the metric and the relative effect to detect (default 10%)."""

    metric_uuid = serializers.CharField(max_length=255)
    target_mde = FiniteFloatField(required=False, default=0.1)

    def validate_target_mde(self, value: float) -> float:
        if value <= 0:
            raise serializers.ValidationError(messages.TARGET_MDE_NOT_POSITIVE)
        return value


class VariantPowerSerializer(serializers.Serializer):
    key = serializers.CharField()
    status = serializers.ChoiceField(choices=["powered", "underpowered", "not-enough-data"])
    power = serializers.FloatField(required=False, help_text="Power to detect target_mde with the units so far.")
    target_power = serializers.FloatField(required=False)
    additional_units = serializers.IntegerField(required=False, help_text="Units (treatment + control) still needed.")
    days_needed = serializers.IntegerField(required=False, allow_null=True)
    upper_bound_achieved = serializers.BooleanField(required=False)


class MidExperimentPowerSerializer(serializers.Serializer):
    metric_uuid = serializers.CharField()
    target_mde = serializers.FloatField()
    baseline = serializers.CharField()
    variants = VariantPowerSerializer(many=True)
