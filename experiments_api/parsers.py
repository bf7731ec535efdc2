"""JSON bodies with a nesting limit, so a deeply nested body is a 400 instead of a RecursionError (a 500).

Used by DRF (`REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]`) and by the SDK endpoints' own body parsing.
"""

import contextlib
import json
from typing import Any

import orjson
from rest_framework import exceptions, parsers

from experiments_api import messages

# Far deeper than any filter, query or event PostHog's clients send, and shallow enough that code walking the
# data recursively (validation, copying, encoding) stays well inside Python's recursion limit.
MAX_JSON_DEPTH = 64
JSON_TOO_DEEP = messages.JSON_NESTED_TOO_DEEP.format(limit=MAX_JSON_DEPTH)
# orjson reads an integer outside 64 bits as a float; a run of 19 digits (the shortest such integer) sends the body
# to the standard library's parser, which keeps every integer exact (also for digits inside strings: only slower).
# Found by mapping digits to "9" and every other byte to " " (a regex search takes about 30 times as long).
_DIGITS_ONLY = bytes(ord("9") if chr(byte).isdigit() and byte < 128 else ord(" ") for byte in range(256))
_LONG_DIGIT_RUN = b"9" * 19


class JSONTooDeepError(ValueError):
    """A JSON document nested deeper than MAX_JSON_DEPTH arrays and objects."""

    def __init__(self) -> None:
        super().__init__(JSON_TOO_DEEP)


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `value` (decoded JSON) nests more than `limit` arrays and objects; iterative, so any depth is safe.
    Walks one level of containers at a time, looking at nothing but their children's types."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below = []
        for item in level:
            below += [
                child
                for child in (item.values() if type(item) is dict else item)
                if type(child) is dict or type(child) is list
            ]
        level = below
    return False


_NOT_READ = object()


def json_loads_limited(data: bytes) -> Any:
    """The decoded JSON document, raising JSONTooDeepError (a ValueError) for one nested deeper than MAX_JSON_DEPTH
    and a ValueError for malformed JSON. orjson reads it when it can (about twice as fast); what orjson refuses or
    would read differently (NaN and Infinity, integers beyond 64 bits, a byte order mark, other encodings than
    UTF-8) is read by the standard library's parser, as before."""
    value: Any = _NOT_READ
    if _LONG_DIGIT_RUN not in data.translate(_DIGITS_ONLY):
        with contextlib.suppress(orjson.JSONDecodeError):
            value = orjson.loads(data)
    if value is _NOT_READ:
        try:
            value = json.loads(data)
        except RecursionError as error:
            raise JSONTooDeepError() from error
    if json_depth_exceeds(value):
        raise JSONTooDeepError()
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (same messages for malformed JSON) refusing bodies nested deeper than MAX_JSON_DEPTH."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise exceptions.ParseError(JSON_TOO_DEEP) from error
        if json_depth_exceeds(data):
            raise exceptions.ParseError(JSON_TOO_DEEP)
        return data
