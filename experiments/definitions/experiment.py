"""Validation of the experiment's free-form JSON fields (parameters, exposure_criteria, stats_config, ...).

Each function returns the cleaned value or raises a DRF ValidationError; the serializer attaches the field name.
"""

from typing import Any

from rest_framework import serializers

from experiments import messages
from experiments.definitions.exposure import ExposureProblem, parse_exposure_criteria
from experiments.stats.config import StatsConfig, StatsConfigError
from flags.validators import MAX_VARIANTS

CONTROL_VARIANT_KEY = "control"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_feature_flag_variants(variants: Any) -> list[dict]:
    """Variant list checks of §3.3; `split_percent` wins over `rollout_percentage` and is renamed to it."""
    if not isinstance(variants, list):
        raise serializers.ValidationError(messages.VARIANTS_NOT_A_LIST)
    if len(variants) > MAX_VARIANTS:
        raise serializers.ValidationError(messages.TOO_MANY_VARIANTS)
    cleaned = []
    for index, variant in enumerate(variants):
        if not isinstance(variant, dict):
            raise serializers.ValidationError(messages.VARIANT_NOT_OBJECT.format(index=index))
        if not isinstance(variant.get("key"), str) or not variant["key"]:
            raise serializers.ValidationError(messages.VARIANT_WITHOUT_KEY.format(index=index))
        variant = dict(variant)
        if "split_percent" in variant:
            variant["rollout_percentage"] = variant.pop("split_percent")
        if "rollout_percentage" not in variant:
            raise serializers.ValidationError(messages.VARIANT_WITHOUT_PERCENTAGE.format(index=index))
        cleaned.append(variant)
    if cleaned and not any(variant["key"] == CONTROL_VARIANT_KEY for variant in cleaned):
        raise serializers.ValidationError(messages.NO_CONTROL_VARIANT)
    if len(cleaned) == 1:
        raise serializers.ValidationError(messages.ONE_VARIANT)
    return cleaned


def validate_parameters(parameters: Any) -> dict | None:
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise serializers.ValidationError(messages.PARAMETERS_NOT_OBJECT)
    cleaned = dict(parameters)
    if "feature_flag_variants" in cleaned and cleaned["feature_flag_variants"] is not None:
        cleaned["feature_flag_variants"] = validate_feature_flag_variants(cleaned["feature_flag_variants"])
    rollout = cleaned.get("rollout_percentage")
    if rollout is not None and (not _is_number(rollout) or not 0 <= rollout <= 100):
        raise serializers.ValidationError(messages.ROLLOUT_PERCENTAGE_INVALID)
    custom_exposure_filter = cleaned.get("custom_exposure_filter")
    if custom_exposure_filter is not None and not _is_insight_filter(custom_exposure_filter):
        raise serializers.ValidationError(messages.CUSTOM_EXPOSURE_FILTER_INVALID)
    return cleaned


def _is_insight_filter(value: Any) -> bool:
    """A legacy insight filter: `events`/`actions` lists of entity objects whose `properties` are objects."""
    if not isinstance(value, dict):
        return False
    entities = []
    for key in ("events", "actions"):
        listed = value.get(key, [])
        if not isinstance(listed, list):
            return False
        entities.extend(listed)
    return all(
        isinstance(entity, dict)
        and isinstance(entity.get("properties", []), list)
        and all(isinstance(prop, dict) for prop in entity.get("properties", []))
        for entity in entities
    )


def validate_exposure_criteria(criteria: Any) -> dict | None:
    try:
        parse_exposure_criteria(criteria)
    except ExposureProblem as problem:
        raise serializers.ValidationError(str(problem)) from None
    return criteria


def validate_stats_config(config: Any) -> dict:
    """The method and every option the results engine reads, so results never fail on a malformed config."""
    if config is None:
        raise serializers.ValidationError(messages.STATS_CONFIG_NOT_OBJECT)
    try:
        StatsConfig.from_dict(config)
    except StatsConfigError as error:
        raise serializers.ValidationError(error.message) from None
    return config


def validate_saved_metrics_ids(items: Any) -> list[dict] | None:
    """Shape checks of §4.2 step 3; existence in the project is checked by the serializer."""
    if items is None:
        return None
    if not isinstance(items, list):
        raise serializers.ValidationError(messages.SAVED_METRICS_NOT_LIST)
    for item in items:
        if not isinstance(item, dict):
            raise serializers.ValidationError(messages.SAVED_METRIC_NOT_OBJECT)
        saved_metric_id = item.get("id")
        if not isinstance(saved_metric_id, int) or isinstance(saved_metric_id, bool):
            raise serializers.ValidationError(messages.SAVED_METRIC_WITHOUT_ID)
        metadata = item.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise serializers.ValidationError(messages.METADATA_NOT_OBJECT)
            if "type" not in metadata:
                raise serializers.ValidationError(messages.SAVED_METRIC_METADATA_WITHOUT_TYPE)
    return items


def validate_ordered_uuids(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise serializers.ValidationError(messages.ORDERING_NOT_LIST.format(field=field))
    return value
