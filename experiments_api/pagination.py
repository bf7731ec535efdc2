"""Limit/offset pagination that rejects malformed parameters with a 400 instead of ignoring them."""

from rest_framework import exceptions, pagination
from rest_framework.request import Request

from experiments_api import messages

MAX_PAGE_SIZE = 1000


def parse_non_negative_int(request: Request, name: str, *, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        message = messages.MUST_BE_POSITIVE_INTEGER if minimum > 0 else messages.MUST_BE_NON_NEGATIVE_INTEGER
        raise exceptions.ValidationError({name: [exceptions.ErrorDetail(message.format(name=name), code="invalid")]})
    return value


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """PostHog's `{count, next, previous, results}` pages; a limit above MAX_PAGE_SIZE is clamped to it."""

    max_limit = MAX_PAGE_SIZE

    def get_limit(self, request: Request) -> int | None:
        limit = parse_non_negative_int(request, self.limit_query_param, minimum=1)
        if limit is None:
            return self.default_limit
        return min(limit, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return parse_non_negative_int(request, self.offset_query_param, minimum=0) or 0

    def get_paginated_response_schema(self, schema: dict) -> dict:
        """Every page carries all four keys; `next` and `previous` are null at the ends (OpenAPI 3.1 types)."""
        page = super().get_paginated_response_schema(schema)
        for link in ("next", "previous"):
            page["properties"][link].pop("nullable")
            page["properties"][link]["type"] = ["string", "null"]
        page["required"] = ["count", "next", "previous", "results"]
        return page
