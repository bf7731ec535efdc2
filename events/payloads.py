"""Request bodies as PostHog's SDKs send them: JSON, gzip, or a form field `data` holding base64 (posthog-js)."""

import base64
import binascii
import zlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from rest_framework import status

from events import messages
from events.validation import parse_timestamp
from experiments_api.parsers import JSONTooDeepError, json_loads_limited

GZIP_MAGIC = b"\x1f\x8b"
GZIP_COMPRESSION_NAMES = ("gzip", "gzip-js")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class PayloadError(Exception):
    """A body that cannot be used; carries the HTTP status and the envelope's type and code to answer with."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        code: str = "parse_error",
        error_type: str = "invalid_request",
        attr: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.error_type = error_type
        self.attr = attr


def request_payload(request: HttpRequest) -> Any:
    """The decoded JSON of a capture or flags request; raises PayloadError (400 malformed, 413 too large)."""
    limit = settings.CAPTURE_MAX_BODY_BYTES
    too_large = PayloadError(
        messages.BODY_TOO_LARGE.format(limit=limit),
        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        code="too_large",
    )
    declared_length = request.META.get("CONTENT_LENGTH") or "0"
    if declared_length.isascii() and declared_length.isdigit() and int(declared_length) > limit:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig as error:
        raise too_large from error
    if len(body) > limit:
        raise too_large
    if request.content_type == FORM_CONTENT_TYPE:
        body = _form_data(body)
    if _is_gzipped(request, body):
        body = _gunzip(body, limit=limit, too_large=too_large)
    if not body.strip():
        raise PayloadError(messages.EMPTY_BODY)
    try:
        return json_loads_limited(body)
    except JSONTooDeepError as error:
        raise PayloadError(str(error)) from error
    except ValueError as error:
        raise PayloadError(messages.MALFORMED_JSON) from error


def request_sent_at(request: HttpRequest, payload: Any) -> datetime | None:
    """When the sender says it sent the request: `sent_at` in the body, or posthog-js's `_` (epoch ms) query value."""
    if isinstance(payload, dict) and (sent_at := parse_timestamp(payload.get("sent_at"))) is not None:
        return sent_at
    milliseconds = request.GET.get("_", "")
    if milliseconds.isdigit():
        try:
            return datetime.fromtimestamp(int(milliseconds) / 1000, tz=UTC)
        except (OverflowError, ValueError, OSError):
            return None
    return None


def _is_gzipped(request: HttpRequest, body: bytes) -> bool:
    return (
        request.headers.get("Content-Encoding", "").lower() == "gzip"
        or request.GET.get("compression", "").lower() in GZIP_COMPRESSION_NAMES
        or body.startswith(GZIP_MAGIC)
    )


def _gunzip(body: bytes, *, limit: int, too_large: PayloadError) -> bytes:
    """Decompress at most `limit` bytes, so a small body cannot expand into an unbounded one."""
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(body, limit + 1)
    except zlib.error as error:
        raise PayloadError(messages.MALFORMED_GZIP) from error
    if len(data) > limit:
        raise too_large
    if not decompressor.eof:
        raise PayloadError(messages.MALFORMED_GZIP)
    return data


def _form_data(body: bytes) -> bytes:
    """posthog-js posts `data=<base64 JSON>` (standard or URL-safe alphabet); some versions put the JSON itself."""
    values = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True).get("data")
    if not values:
        return b""
    value = values[0].strip()
    if value.startswith(("{", "[")):
        return value.encode()
    # An unescaped "+" of base64 arrives as a space in a form body.
    value = value.replace(" ", "+").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise PayloadError(messages.MALFORMED_BASE64) from error


def payload_events(payload: Any) -> list:
    """The events of a body: `batch` (or `data`) list, a bare list, or the body itself as one event."""
    if isinstance(payload, dict):
        for key in ("batch", "data"):
            if key in payload:
                events = payload[key]
                if isinstance(events, dict):
                    return [events]
                if not isinstance(events, list):
                    raise PayloadError(messages.BATCH_NOT_LIST.format(key=key), code="invalid_input")
                return events
        return [payload]
    if isinstance(payload, list):
        return payload
    raise PayloadError(messages.BODY_NOT_EVENTS, code="invalid_input")


def payload_token(payload: Any, events: list = ()) -> str | None:
    """The project token: `api_key` or `token` of the body, else of the first event carrying one (posthog-js
    puts it in the event's properties)."""
    candidates = [payload, *events]
    for candidate in candidates:
        if not isinstance(candidate, dict):
            continue
        properties = candidate.get("properties")
        for token in (
            candidate.get("api_key"),
            candidate.get("token"),
            properties.get("token") if isinstance(properties, dict) else None,
        ):
            if isinstance(token, str) and token:
                return token
    return None
