"""Structure checks for the `filters` JSON of feature flags and cohorts.

A flag's filters are a business rule every writer must respect (the API and the experiments that create flags),
so `validate_flag_filters` raises a DomainError on `filters` and the flag services call it; the cohort check is the
cohort serializer's and raises a DRF ValidationError."""

import math
from collections.abc import Iterable

from rest_framework import serializers

from experiments_api.exceptions import DomainError
from flags import messages
from persons.behaviours import BehaviourProblem, behavioural_leaves, parse_behaviour

MAX_VARIANTS = 20
MAX_GROUP_TYPE_INDEX = 4


def _invalid_filters(message: str) -> DomainError:
    return DomainError(message, attr="filters")


def are_property_filters(properties: object) -> bool:
    """A list of property filters, each an object with a non-empty string `key` (what flag evaluation reads)."""
    return isinstance(properties, list) and all(
        isinstance(prop, dict) and isinstance(prop.get("key"), str) and prop["key"] for prop in properties
    )


def is_percentage(value: object) -> bool:
    """A JSON number (not a boolean, not a string) from 0 to 100."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100


def validate_flag_filters(filters: object) -> dict:
    """Check release conditions, variants, payloads, aggregation and holdout groups of a flag's `filters`."""
    if not isinstance(filters, dict):
        raise _invalid_filters(messages.FLAG_FILTERS_NOT_OBJECT)
    variant_keys = _validate_variants(filters.get("multivariate"))
    _validate_release_conditions(filters.get("groups"), variant_keys)
    _validate_payloads(filters.get("payloads"), variant_keys)
    _validate_holdout_groups(filters.get("holdout_groups"))
    _validate_holdout(filters.get("holdout"))
    group_type_index = filters.get("aggregation_group_type_index")
    if group_type_index is not None and not (
        isinstance(group_type_index, int)
        and not isinstance(group_type_index, bool)
        and 0 <= group_type_index <= MAX_GROUP_TYPE_INDEX
    ):
        raise _invalid_filters(messages.AGGREGATION_INDEX_INVALID.format(maximum=MAX_GROUP_TYPE_INDEX))
    return filters


def _validate_variants(multivariate: object) -> list[str]:
    """Return the variant keys; an absent or null `multivariate` makes a boolean flag (no variants)."""
    if multivariate is None:
        return []
    if not isinstance(multivariate, dict):
        raise _invalid_filters(messages.MULTIVARIATE_NOT_OBJECT)
    variants = multivariate.get("variants", [])
    if not isinstance(variants, list):
        raise _invalid_filters(messages.MULTIVARIATE_VARIANTS_NOT_LIST)
    if len(variants) > MAX_VARIANTS:
        raise _invalid_filters(messages.MULTIVARIATE_TOO_MANY_VARIANTS.format(limit=MAX_VARIANTS))
    keys: list[str] = []
    for index, variant in enumerate(variants):
        if not isinstance(variant, dict):
            raise _invalid_filters(messages.MULTIVARIATE_VARIANT_NOT_OBJECT.format(index=index))
        key = variant.get("key")
        if not isinstance(key, str) or not key:
            raise _invalid_filters(messages.VARIANT_KEY_MISSING.format(index=index))
        if variant.get("name") is not None and not isinstance(variant["name"], str):
            raise _invalid_filters(messages.VARIANT_NAME_INVALID.format(index=index))
        if not is_percentage(variant.get("rollout_percentage")):
            raise _invalid_filters(messages.VARIANT_ROLLOUT_INVALID.format(index=index))
        if key in keys:
            raise _invalid_filters(messages.DUPLICATE_VARIANT_KEY.format(key=key))
        keys.append(key)
    if variants and not math.isclose(sum(variant["rollout_percentage"] for variant in variants), 100):
        raise _invalid_filters(messages.VARIANT_SUM_NOT_100)
    return keys


def _validate_release_conditions(groups: object, variant_keys: Iterable[str]) -> None:
    """Each group: optional `properties` list, `rollout_percentage` 0–100 or null (everyone), optional variant."""
    if groups is None:
        return
    if not isinstance(groups, list):
        raise _invalid_filters(messages.GROUPS_NOT_LIST)
    for index, group in enumerate(groups):
        if not isinstance(group, dict):
            raise _invalid_filters(messages.GROUP_NOT_OBJECT.format(index=index))
        if not are_property_filters(group.get("properties", [])):
            raise _invalid_filters(messages.GROUP_PROPERTIES_NOT_LIST.format(index=index))
        rollout = group.get("rollout_percentage")
        if rollout is not None and not is_percentage(rollout):
            raise _invalid_filters(messages.GROUP_ROLLOUT_INVALID.format(index=index))
        variant = group.get("variant")
        if variant is not None and variant not in variant_keys:
            raise _invalid_filters(messages.GROUP_VARIANT_UNKNOWN.format(index=index, variant=variant))


def _validate_payloads(payloads: object, variant_keys: list[str]) -> None:
    """Multivariate flags key payloads by variant; boolean flags only have a payload for "true"."""
    if payloads is None:
        return
    if not isinstance(payloads, dict):
        raise _invalid_filters(messages.PAYLOADS_NOT_OBJECT)
    for key in payloads:
        if variant_keys and key not in variant_keys:
            raise _invalid_filters(messages.PAYLOAD_KEY_NOT_A_VARIANT.format(key=key))
        if not variant_keys and key != "true":
            raise _invalid_filters(messages.BOOLEAN_FLAG_PAYLOAD_KEY.format(key=key))


def _validate_holdout_groups(holdout_groups: object) -> None:
    """Written by the holdout services: a copy of a holdout's groups, each tagged with its variant."""
    if holdout_groups is None:
        return
    if not isinstance(holdout_groups, list):
        raise _invalid_filters(messages.HOLDOUT_GROUPS_NOT_LIST)
    for index, group in enumerate(holdout_groups):
        if not (
            isinstance(group, dict)
            and is_percentage(group.get("rollout_percentage"))
            and isinstance(group.get("variant"), str)
            and are_property_filters(group.get("properties", []))
        ):
            raise _invalid_filters(messages.HOLDOUT_GROUP_INVALID.format(index=index))


def _validate_holdout(holdout: object) -> None:
    """PostHog's newer single-holdout form `{id, exclusion_percentage}`."""
    if holdout is None:
        return
    if not (
        isinstance(holdout, dict)
        and isinstance(holdout.get("id"), int)
        and not isinstance(holdout.get("id"), bool)
        and is_percentage(holdout.get("exclusion_percentage"))
    ):
        raise _invalid_filters(messages.HOLDOUT_INVALID)


def validate_cohort_filters(filters: object) -> dict:
    """A cohort's filters are an object; its `properties`, when given, an AND/OR group with a `values` list, whose
    behavioural leaves parse (persons.behaviours: the message names the leaf and the field)."""
    if not isinstance(filters, dict):
        raise serializers.ValidationError(messages.COHORT_FILTERS_NOT_OBJECT)
    properties = filters.get("properties")
    if properties is not None and not (
        isinstance(properties, dict)
        and properties.get("type") in ("AND", "OR")
        and isinstance(properties.get("values"), list)
    ):
        raise serializers.ValidationError(messages.COHORT_PROPERTIES_INVALID)
    for leaf, path in behavioural_leaves(properties):
        try:
            parse_behaviour(leaf, path)
        except BehaviourProblem as problem:
            raise serializers.ValidationError(str(problem)) from None
    return filters
