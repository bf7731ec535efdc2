"""One PostHog-style event checked and normalised for storage, with its timestamp corrected for clock skew."""

import json
import re
import uuid as uuid_lib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from events import messages
from persons.properties import PERSONLESS, PersonUpdate, person_update_for

MAX_NAME_LENGTH = 400
# Corrected timestamps further ahead than this are refused: clocks are rarely that wrong, and such rows would
# sit in the future of every results window. PostHog uses the same bound (23 hours covers every time zone).
FUTURE_TOLERANCE = timedelta(hours=23)


# One encoder for every event: json.dumps with options builds a new encoder per call.
JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_REPLACEMENT_CHARACTER = "\ufffd"
# NUL (which PostgreSQL's text and jsonb cannot hold) and lone surrogates (which are not valid UTF-8).
_UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


class InvalidEvent(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(slots=True)
class ValidEvent:
    uuid: uuid_lib.UUID
    event: str
    distinct_id: str
    timestamp: datetime
    properties_json: str
    # What the event asks of its person; None for an event PostHog drops (a merge event sent personless).
    person: PersonUpdate | None = PERSONLESS
    # Filled in by the person step of ingestion (in place: a copy of every event costs more than the step).
    person_id: uuid_lib.UUID | None = None


def event_validate(raw: Any, *, now: datetime, sent_at: datetime | None = None) -> ValidEvent:
    """Check one raw event and return it ready for storage; raises InvalidEvent with a message saying what to fix."""
    if not isinstance(raw, dict):
        raise InvalidEvent(messages.EVENT_NOT_OBJECT)
    name = _event_name(raw.get("event"))
    properties = raw.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise InvalidEvent(messages.PROPERTIES_NOT_OBJECT)
    # posthog-js sends the distinct id among the properties.
    distinct_id = raw.get("distinct_id")
    distinct_id = _distinct_id(properties.get("distinct_id") if distinct_id is None else distinct_id)
    timestamp = corrected_timestamp(raw, now=now, sent_at=sent_at)
    if timestamp > now + FUTURE_TOLERANCE:
        raise InvalidEvent(messages.TIMESTAMP_IN_FUTURE)
    properties_json, storable_properties = _properties_json(properties)
    return ValidEvent(
        uuid=_event_uuid(raw.get("uuid")),
        event=name,
        distinct_id=distinct_id,
        timestamp=timestamp,
        properties_json=properties_json,
        person=person_update_for(_storable_person_fields(raw), name, storable_properties),
    )


def _storable_person_fields(raw: Mapping) -> Mapping:
    """The raw event with its top-level `$set`/`$set_once` (posthog-js identify) made storable, when it has them."""
    if "$set" not in raw and "$set_once" not in raw:
        return raw
    return {**raw, **{key: _storable_value(raw[key]) for key in ("$set", "$set_once") if key in raw}}


def corrected_timestamp(raw: Mapping, *, now: datetime, sent_at: datetime | None) -> datetime:
    """PostHog's rule: `offset` (ms before sending) wins; else shift `timestamp` by the skew between the
    sender's `sent_at` and our clock; else take `timestamp` as given; with neither, the event happened now."""
    offset = raw.get("offset")
    try:
        if isinstance(offset, int | float) and not isinstance(offset, bool):
            return now - timedelta(milliseconds=offset)
        if raw.get("timestamp") is None:
            return now
        timestamp = parse_timestamp(raw["timestamp"])
        if timestamp is None:
            raise InvalidEvent(messages.TIMESTAMP_INVALID)
        corrected = timestamp if sent_at is None else now + (timestamp - sent_at)
        return corrected.astimezone(UTC)
    except (OverflowError, ValueError) as error:  # a correction that leaves the representable range
        raise InvalidEvent(messages.TIMESTAMP_INVALID) from error


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 string as an aware datetime (naive values are UTC); None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _event_uuid(value: Any) -> uuid_lib.UUID:
    if value is None:
        return uuid_lib.uuid4()
    if isinstance(value, str):
        try:
            return uuid_lib.UUID(value)
        except ValueError:
            pass
    raise InvalidEvent(messages.EVENT_UUID_INVALID)


def _event_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidEvent(messages.EVENT_NAME_MISSING)
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidEvent(messages.EVENT_NAME_TOO_LONG.format(limit=MAX_NAME_LENGTH))
    return storable_text(value)


def _distinct_id(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent(messages.DISTINCT_ID_MISSING)
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidEvent(messages.DISTINCT_ID_TOO_LONG.format(limit=MAX_NAME_LENGTH))
    return storable_text(value)


def _properties_json(properties: Mapping) -> tuple[str, Mapping]:
    """The properties as stored (compact JSON text) and as the person step reads them (the same values). orjson
    encodes them when it can (ten times faster). It writes NaN and Infinity as null, so output with a null is encoded
    again by the standard library's encoder, which refuses non-finite numbers; so is what orjson refuses (integers
    beyond 64 bits, lone surrogates)."""
    try:
        text = orjson.dumps(properties).decode()
    except orjson.JSONEncodeError:
        text = None
    by_standard_encoder = text is None or "null" in text
    if by_standard_encoder:
        try:
            text = JSON_ENCODER.encode(properties)
        except ValueError as error:
            raise InvalidEvent(messages.PROPERTIES_NOT_FINITE) from error
    # PostgreSQL's jsonb cannot hold NUL characters (escaped as \u0000 by both encoders) or lone surrogates (which
    # only the standard encoder lets through); replace them as PostHog does, in the person's properties and distinct
    # ids too.
    if "\\u0000" in text or (by_standard_encoder and _UNSTORABLE_CHARACTERS.search(text)):
        properties = _storable_value(properties)
        text = JSON_ENCODER.encode(properties)
    return text, properties


def storable_text(text: str) -> str:
    """`text` with the characters PostgreSQL cannot store replaced by U+FFFD."""
    return _UNSTORABLE_CHARACTERS.sub(_REPLACEMENT_CHARACTER, text)


def _storable_value(value: Any) -> Any:
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {_storable_value(key): _storable_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable_value(item) for item in value]
    return value
