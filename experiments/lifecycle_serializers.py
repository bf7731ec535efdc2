"""Request bodies of the lifecycle actions and the running-time calculator, and the activity-log shape."""

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
    user = UserBasicSerializer(read_only=True)

    class Meta:
        model = ExperimentActivity
        fields = ["id", "activity", "user", "changes", "created_at"]
        read_only_fields = fields


class RunningTimeRequestSerializer(serializers.Serializer):
    """Inputs of the sample-size calculation; a baseline comes either as `baseline_value` (a conversion rate for
    funnels, a mean with `variance` otherwise) or as raw statistics `n`, `sum`, `sum_squares`."""

    metric_type = serializers.ChoiceField(choices=["mean", "funnel", "ratio"])
    minimum_detectable_effect = serializers.FloatField()
    baseline_value = serializers.FloatField(required=False)
    variance = serializers.FloatField(required=False)
    n = serializers.IntegerField(required=False, min_value=2)
    sum = serializers.FloatField(required=False)
    sum_squares = serializers.FloatField(required=False, min_value=0)
    exposure_rate_per_day = serializers.FloatField(required=False)
    variants = serializers.IntegerField(required=False, default=2, min_value=2, max_value=20)
    alpha = serializers.FloatField(required=False, default=0.05)
    power = serializers.FloatField(required=False, default=0.8)

    def validate_minimum_detectable_effect(self, value: float) -> float:
        if value <= 0:
            raise serializers.ValidationError("minimum_detectable_effect must be greater than 0")
        return value

    def validate_alpha(self, value: float) -> float:
        if not 0 < value < 1:
            raise serializers.ValidationError("alpha must be between 0 and 1 (exclusive)")
        return value

    def validate_power(self, value: float) -> float:
        if not 0 < value < 1:
            raise serializers.ValidationError("power must be between 0 and 1 (exclusive)")
        return value

    def validate_exposure_rate_per_day(self, value: float) -> float:
        if value <= 0:
            raise serializers.ValidationError("exposure_rate_per_day must be greater than 0")
        return value

    def validate(self, attrs: dict) -> dict:
        raw = [key for key in ("n", "sum", "sum_squares") if key in attrs]
        if raw and len(raw) != 3:
            raise serializers.ValidationError("n, sum and sum_squares must be given together")
        if raw:
            n, total, squares = attrs["n"], attrs["sum"], attrs["sum_squares"]
            baseline = total / n
            variance = (squares - total * total / n) / (n - 1)
            if attrs["metric_type"] == "funnel":
                variance = None
        elif "baseline_value" in attrs:
            baseline, variance = attrs["baseline_value"], attrs.get("variance")
        else:
            raise serializers.ValidationError("Give baseline_value, or n, sum and sum_squares")
        if attrs["metric_type"] == "funnel":
            if not 0 < baseline < 1:
                raise serializers.ValidationError({"baseline_value": ["a conversion rate must be between 0 and 1"]})
            variance = None
        elif variance is None or variance <= 0:
            raise serializers.ValidationError({"variance": ["mean metrics need a variance greater than 0"]})
        elif baseline == 0:
            raise serializers.ValidationError({"baseline_value": ["the baseline mean must not be 0"]})
        return {**attrs, "baseline_value": baseline, "variance": variance}
