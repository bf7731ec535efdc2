"""Feature flag evaluation as PostHog does it: pure functions over flag dicts, no database access.

A flag dict has at least `key` and `filters` (the FeatureFlag.filters JSON). Bucketing hashes
`"<flag key>.<distinct_id><salt>"` with SHA-1 and reads the first 15 hex digits as a number in [0, 1], so the
same user gets the same answer here, in PostHog, and in PostHog's SDKs evaluating locally.
"""

import hashlib
import json
import math
import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# The largest value of 15 hex digits: a hash divided by it lies in [0, 1].
LONG_SCALE = float(0xFFFFFFFFFFFFFFF)
VARIANT_SALT = "variant"
HOLDOUT_VARIANT_PATTERN = re.compile(r"^holdout-(\d+)$")
# Payloads of a flag without variants are stored under this key of `filters.payloads`.
BOOLEAN_PAYLOAD_KEY = "true"
NUMERIC_OPERATORS = ("gt", "gte", "lt", "lte")


class MatchReason(StrEnum):
    CONDITION_MATCH = "condition_match"
    NO_CONDITION_MATCH = "no_condition_match"
    OUT_OF_ROLLOUT_BOUND = "out_of_rollout_bound"
    HOLDOUT_CONDITION_VALUE = "holdout_condition_value"
    NO_GROUP_TYPE = "no_group_type"


@dataclass(frozen=True)
class FlagMatch:
    """The answer for one flag and one user: enabled, the variant (if any), why, and the payload."""

    enabled: bool
    variant: str | None
    reason: MatchReason
    condition_index: int | None = None
    payload: Any = None

    @property
    def value(self) -> bool | str:
        """What SDKs report as `$feature_flag_response`: the variant, else whether the flag is enabled."""
        return self.variant or self.enabled

    @property
    def description(self) -> str:
        if self.reason == MatchReason.CONDITION_MATCH:
            return f"Matched condition set {self.condition_index + 1}"
        if self.reason == MatchReason.OUT_OF_ROLLOUT_BOUND:
            return f"Out of rollout bound for condition set {self.condition_index + 1}"
        if self.reason == MatchReason.HOLDOUT_CONDITION_VALUE:
            return "Held out of the experiment by its holdout group"
        if self.reason == MatchReason.NO_GROUP_TYPE:
            return "Group flags need a group type, which this server does not track"
        return "No matching condition set"


def bucket_hash(key: str, identifier: str, salt: str = "") -> float:
    """PostHog's bucketing hash of `identifier` for flag `key`, uniform in [0, 1]."""
    digest = hashlib.sha1(f"{key}.{identifier}{salt}".encode()).hexdigest()
    return int(digest[:15], 16) / LONG_SCALE


def holdout_variant_key(holdout_id: int | str) -> str:
    """The variant a flag answers for users held out by holdout `holdout_id`; experiments count it as an arm."""
    return f"holdout-{holdout_id}"


def holdout_hash(identifier: str) -> float:
    """The holdout hash ignores the flag key, so a user held out of one experiment is held out of all of them."""
    digest = hashlib.sha1(f"holdout-{identifier}".encode()).hexdigest()
    return int(digest[:15], 16) / LONG_SCALE


def flag_evaluate(
    flag: Mapping, *, distinct_id: str, person_properties: Mapping, cohort_ids: AbstractSet[int] = frozenset()
) -> FlagMatch:
    """Evaluate one flag for one user (bucketed on `distinct_id`, the hash key): holdout groups first, then release
    conditions in PostHog's order. `cohort_ids` are the cohorts the user's person belongs to."""
    filters = flag.get("filters") or {}
    if filters.get("aggregation_group_type_index") is not None:
        return FlagMatch(enabled=False, variant=None, reason=MatchReason.NO_GROUP_TYPE)

    for index, group in enumerate(holdout_groups(filters)):
        if _holdout_group_matches(
            group, distinct_id=distinct_id, person_properties=person_properties, cohort_ids=cohort_ids
        ):
            return FlagMatch(
                enabled=True,
                variant=group.get("variant"),
                reason=MatchReason.HOLDOUT_CONDITION_VALUE,
                condition_index=index,
            )

    out_of_rollout_index = None
    rollout_hash = None  # computed once, at the first condition with a rollout percentage
    for index, condition in _conditions_in_evaluation_order(filters):
        if not conditions_match(condition.get("properties") or [], person_properties, cohort_ids):
            continue
        rollout_percentage = condition.get("rollout_percentage")
        if rollout_percentage is not None:
            if rollout_hash is None:
                rollout_hash = bucket_hash(flag["key"], distinct_id)
            if not _in_rollout(rollout_hash, rollout_percentage):
                if out_of_rollout_index is None:
                    out_of_rollout_index = index
                continue
        variant = _condition_variant(flag, condition, distinct_id)
        return FlagMatch(
            enabled=True,
            variant=variant,
            reason=MatchReason.CONDITION_MATCH,
            condition_index=index,
            payload=(filters.get("payloads") or {}).get(variant or BOOLEAN_PAYLOAD_KEY),
        )
    if out_of_rollout_index is not None:
        return FlagMatch(
            enabled=False,
            variant=None,
            reason=MatchReason.OUT_OF_ROLLOUT_BOUND,
            condition_index=out_of_rollout_index,
        )
    return FlagMatch(enabled=False, variant=None, reason=MatchReason.NO_CONDITION_MATCH)


def holdout_groups(filters: Mapping) -> list[dict]:
    """The flag's holdout groups: `holdout_groups` as written by experiments, or the newer single `holdout`
    ({id, exclusion_percentage}) as one group."""
    groups = filters.get("holdout_groups")
    if groups:
        return list(groups)
    holdout = filters.get("holdout")
    if isinstance(holdout, Mapping) and holdout.get("id") is not None:
        return [
            {
                "properties": [],
                "rollout_percentage": holdout.get("exclusion_percentage"),
                "variant": holdout_variant_key(holdout["id"]),
            }
        ]
    return []


def _holdout_group_matches(
    group: Mapping, *, distinct_id: str, person_properties: Mapping, cohort_ids: AbstractSet[int]
) -> bool:
    if not conditions_match(group.get("properties") or [], person_properties, cohort_ids):
        return False
    return _in_rollout(holdout_hash(distinct_id), group.get("rollout_percentage"))


def _conditions_in_evaluation_order(filters: Mapping) -> list[tuple[int, dict]]:
    """Conditions that force a variant go first (a stable sort, as PostHog's server does), keeping their indexes."""
    indexed = list(enumerate(filters.get("groups") or []))
    if not any(condition.get("variant") for _index, condition in indexed):
        return indexed
    return sorted(indexed, key=lambda item: 0 if item[1].get("variant") else 1)


def _in_rollout(hash_value: float, rollout_percentage: float | None) -> bool:
    return rollout_percentage is None or hash_value <= float(rollout_percentage) / 100


def _condition_variant(flag: Mapping, condition: Mapping, distinct_id: str) -> str | None:
    variants = ((flag.get("filters") or {}).get("multivariate") or {}).get("variants") or []
    override = condition.get("variant")
    if override and any(variant["key"] == override for variant in variants):
        return override
    return variant_for(variants, bucket_hash(flag["key"], distinct_id, salt=VARIANT_SALT))


def variant_for(variants: list[Mapping], hash_value: float) -> str | None:
    """The variant whose cumulative rollout range [low, high) holds `hash_value`; None past the last one."""
    low = 0.0
    for variant in variants:
        high = low + float(variant["rollout_percentage"]) / 100
        if low <= hash_value < high:
            return variant["key"]
        low = high
    return None


def cohort_filter_id(prop: Mapping) -> int | None:
    """The cohort id of a `{"type": "cohort", "key": "id", "value": <id>}` filter, else None."""
    if prop.get("type") != "cohort":
        return None
    try:
        return int(prop.get("value"))
    except (TypeError, ValueError):
        return None


def conditions_match(properties: list, person_properties: Mapping, cohort_ids: AbstractSet[int]) -> bool:
    """Every filter of a condition matches: person properties, or membership of a cohort (`not_in` negates)."""
    for prop in properties:
        if prop.get("type") == "cohort":
            member = cohort_filter_id(prop) in cohort_ids
            if member == (prop.get("operator") == "not_in"):
                return False
        elif not property_filter_matches(prop, person_properties):
            return False
    return True


def property_filter_matches(prop: Mapping, properties: Mapping) -> bool:
    """Match one person-property filter. A missing property only matches `is_not_set`; an unknown operator or
    filter type never matches."""
    if prop.get("type", "person") != "person":
        return False
    operator = prop.get("operator") or "exact"
    key = prop.get("key")
    if operator == "is_not_set":
        return key not in properties
    if key not in properties:
        return False
    if operator == "is_set":
        return True
    expected = prop.get("value")
    actual = properties[key]
    if operator in ("exact", "is_not"):
        candidates = expected if isinstance(expected, list) else [expected]
        matched = _as_text(actual).lower() in {_as_text(candidate).lower() for candidate in candidates}
        return matched if operator == "exact" else not matched
    if operator in ("icontains", "not_icontains"):
        matched = _as_text(expected).lower() in _as_text(actual).lower()
        return matched if operator == "icontains" else not matched
    if operator == "regex":
        return _regex_matches(_as_text(expected), _as_text(actual))
    if operator in NUMERIC_OPERATORS:
        return _numeric_matches(operator, expected, actual)
    return False


def _as_text(value: Any) -> str:
    """Values compare as PostHog compares them: strings as they are, anything else as its JSON text."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _regex_matches(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _numeric_matches(operator: str, expected: Any, actual: Any) -> bool:
    expected_number, actual_number = _as_number(expected), _as_number(actual)
    if expected_number is None or actual_number is None:
        return False
    if operator == "gt":
        return actual_number > expected_number
    if operator == "gte":
        return actual_number >= expected_number
    if operator == "lt":
        return actual_number < expected_number
    return actual_number <= expected_number


def flag_for_local_evaluation(flag: Mapping) -> dict | None:
    """The flag as PostHog's SDKs expect it for local evaluation, or None when an SDK could not reproduce this
    server's answer (it then asks the server for that flag).

    SDKs evaluate conditions in the order given and understand holdouts only as `{id, exclusion_percentage}`, so
    conditions that force a variant are moved first and a single property-less holdout group is rewritten.
    """
    filters = dict(flag.get("filters") or {})
    groups = holdout_groups(filters)
    filters.pop("holdout_groups", None)
    if groups:
        holdout = _sdk_holdout(groups)
        if holdout is None:
            return None
        filters["holdout"] = holdout
    filters["groups"] = [condition for _index, condition in _conditions_in_evaluation_order(filters)]
    return {**flag, "filters": filters}


def _sdk_holdout(groups: list[Mapping]) -> dict | None:
    if len(groups) != 1 or groups[0].get("properties"):
        return None
    match = HOLDOUT_VARIANT_PATTERN.match(str(groups[0].get("variant") or ""))
    if match is None:
        return None
    rollout = groups[0].get("rollout_percentage")
    return {"id": int(match.group(1)), "exclusion_percentage": 100 if rollout is None else rollout}
