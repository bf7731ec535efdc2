"""JSON bodies with a nesting limit, so a deeply nested body is a 400 instead of a RecursionError (a 500).

Used by DRF (`REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]`) and by the SDK endpoints' own body parsing.
"""

import json
from typing import Any

from rest_framework import exceptions, parsers

from experiments_api import messages

# Far deeper than any filter, query or event PostHog's clients send, and shallow enough that code walking the
# data recursively (validation, copying, encoding) stays well inside Python's recursion limit.
MAX_JSON_DEPTH = 64
JSON_TOO_DEEP = messages.JSON_NESTED_TOO_DEEP.format(limit=MAX_JSON_DEPTH)


class JSONTooDeepError(ValueError):
    """A JSON document nested deeper than MAX_JSON_DEPTH arrays and objects."""

    def __init__(self) -> None:
        super().__init__(JSON_TOO_DEEP)


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `value` (decoded JSON) nests more than `limit` arrays and objects; iterative, so any depth is safe."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def json_loads_limited(data: str | bytes) -> Any:
    """`json.loads`, raising JSONTooDeepError (a ValueError) for a document nested deeper than MAX_JSON_DEPTH."""
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
