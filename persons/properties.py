"""What an event asks of its person, read from the raw event as PostHog's ingestion does, and the property rules
($set, $set_once, $unset) applied to a person's properties. Pure functions, no database."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The longest distinct id (the column's size; longer event distinct ids are refused at validation).
MAX_DISTINCT_ID_LENGTH = 400

IDENTIFY_EVENT = "$identify"
CREATE_ALIAS_EVENT = "$create_alias"
MERGE_DANGEROUSLY_EVENT = "$merge_dangerously"
MERGE_EVENTS = frozenset({IDENTIFY_EVENT, CREATE_ALIAS_EVENT, MERGE_DANGEROUSLY_EVENT})
# Events that force a person write even when only noisy properties change.
FORCE_WRITE_EVENTS = MERGE_EVENTS | {"$set"}
# Events that never update person properties.
NO_PERSON_UPDATE_EVENTS = frozenset({"$exception", "$$heatmap"})
# Also dropped when sent with `$process_person_profile: false`.
DROPPED_WHEN_PERSONLESS = MERGE_EVENTS | {"$groupidentify"}

# Event properties copied into `$set` (when absent there) and, as `$initial_<name>`, into `$set_once`.
EVENT_TO_PERSON_PROPERTIES = (
    "$app_build",
    "$app_name",
    "$app_namespace",
    "$app_version",
    "$browser",
    "$browser_version",
    "$device_type",
    "$current_url",
    "$pathname",
    "$os",
    "$os_name",
    "$os_version",
    "$referring_domain",
    "$referrer",
    "$screen_height",
    "$screen_width",
    "$viewport_height",
    "$viewport_width",
    "$raw_user_agent",
)
CAMPAIGN_PROPERTIES = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "gclid",
    "gad_source",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "msclkid",
    "twclid",
    "li_fat_id",
    "mc_cid",
    "igshid",
    "ttclid",
    "rdt_cid",
    "irclid",
    "_kx",
)
COPIED_PROPERTIES = EVENT_TO_PERSON_PROPERTIES + CAMPAIGN_PROPERTIES
# Changes to these alone do not force a person write (PostHog's FILTERED_PERSON_UPDATE_PROPERTIES).
NOISY_PROPERTIES = frozenset(EVENT_TO_PERSON_PROPERTIES)

# PostHog's isDistinctIdIllegal: compared lower-cased, or exactly; each also quoted in ' or ".
_ILLEGAL_CASE_INSENSITIVE = (
    "anonymous",
    "guest",
    "distinctid",
    "distinct_id",
    "id",
    "not_authenticated",
    "email",
    "undefined",
    "true",
    "false",
)
_ILLEGAL_CASE_SENSITIVE = ("[object Object]", "NaN", "None", "none", "null", "0", "undefined")


def _quoted(values) -> frozenset[str]:
    return frozenset(quoted for value in values for quoted in (value, f"'{value}'", f'"{value}"'))


ILLEGAL_IDS_CASE_INSENSITIVE = _quoted(_ILLEGAL_CASE_INSENSITIVE)
ILLEGAL_IDS_CASE_SENSITIVE = _quoted(_ILLEGAL_CASE_SENSITIVE)


def distinct_id_is_illegal(distinct_id: str) -> bool:
    """Ids that many users share by mistake (`anonymous`, `null`, `0`, …) are never merged."""
    return (
        not distinct_id.strip()
        or distinct_id.lower() in ILLEGAL_IDS_CASE_INSENSITIVE
        or distinct_id in ILLEGAL_IDS_CASE_SENSITIVE
    )


@dataclass(frozen=True)
class PersonUpdate:
    """The person work of one event. `process` False: personless (no person is created or changed); `merge_from`:
    the id to merge into the event's distinct id ($anon_distinct_id of $identify, `alias` of an alias or merge)."""

    process: bool = True
    set: dict = field(default_factory=dict)
    set_once: dict = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    merge_from: str | None = None
    dangerous: bool = False
    force_write: bool = False


PERSONLESS = PersonUpdate(process=False)


def _object(value: Any) -> dict:
    """`$set`/`$set_once`: an object, else nothing (PostHog would spread a string or list into keys "0", "1", …)."""
    return dict(value) if isinstance(value, Mapping) else {}


def _merge_id(value: Any) -> str | None:
    """The id to merge: text, or a number as text (as an event's distinct id); anything else, or text longer than
    any distinct id, merges nothing. (PostHog turns null, objects and booleans into illegal ids such as "null",
    "[object Object]", "true", so it refuses those merges too.)"""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and 0 < len(value) <= MAX_DISTINCT_ID_LENGTH else None


def _unset_keys(value: Any) -> tuple[str, ...]:
    """`$unset`: a list of keys (those that are text) or an object's keys, else nothing."""
    if isinstance(value, Mapping):
        value = list(value)
    if isinstance(value, list):
        return tuple(key for key in value if isinstance(key, str))
    return ()


def person_update_for(raw: Mapping, name: str, properties: Mapping) -> PersonUpdate | None:
    """The person work an event asks for; None when the event is dropped (a merge event sent personless)."""
    if properties.get("$process_person_profile") is False:
        return None if name in DROPPED_WHEN_PERSONLESS else PERSONLESS
    if name in NO_PERSON_UPDATE_EVENTS:
        return PersonUpdate()
    # Top-level $set/$set_once (posthog-js identify) merge into the properties' ones and win on a clash.
    to_set = {**_object(properties.get("$set")), **_object(raw.get("$set"))}
    to_set_once = {**_object(properties.get("$set_once")), **_object(raw.get("$set_once"))}
    for key in COPIED_PROPERTIES:
        if key in properties:
            to_set.setdefault(key, properties[key])
            to_set_once.setdefault(f"$initial_{key.removeprefix('$')}", properties[key])
    merge_from = None
    if name == IDENTIFY_EVENT:
        merge_from = _merge_id(properties.get("$anon_distinct_id"))
    elif name in (CREATE_ALIAS_EVENT, MERGE_DANGEROUSLY_EVENT):
        merge_from = _merge_id(properties.get("alias"))
    return PersonUpdate(
        set=to_set,
        set_once=to_set_once,
        unset=_unset_keys(properties.get("$unset")),
        merge_from=merge_from,
        dangerous=name == MERGE_DANGEROUSLY_EVENT,
        force_write=name in FORCE_WRITE_EVENTS,
    )


def properties_at_creation(update: PersonUpdate) -> dict:
    """A new person's properties: $set_once, then $set over it, then $unset."""
    properties = {**update.set_once, **update.set}
    for key in update.unset:
        properties.pop(key, None)
    return properties


def properties_apply(properties: dict, update: PersonUpdate) -> tuple[bool, bool]:
    """Apply the update in place: $set_once to absent keys (a stored null counts as set), $set where the value
    differs ($set wins over $set_once), then $unset of existing keys. Returns (changed, changed beyond noisy keys)."""
    changed, significant = False, False
    for key, value in update.set_once.items():
        if key not in properties and key not in update.set:
            properties[key] = value
            changed = significant = True
    for key, value in update.set.items():
        if key not in properties or properties[key] != value:
            properties[key] = value
            changed = True
            significant = significant or key not in NOISY_PROPERTIES
    for key in update.unset:
        if key in properties:
            del properties[key]
            changed = significant = True
    return changed, significant
