"""Limit/offset pagination that rejects malformed parameters with a 400 instead of ignoring them, and counts the
rows only when the first page does not already tell how many there are."""

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


class FirstPage(list):
    """The first `limit` rows of a queryset, read at once, in its place in DRF's paginate_queryset: DRF counts it
    with `count()`, which is its length when the page is short (the queryset's `COUNT(*)` only for a full page), and
    slices it like the queryset. Most lists fit on one page, so most list requests make one query, not two."""

    def __init__(self, queryset, limit: int) -> None:
        super().__init__(queryset[:limit])
        self.queryset, self.limit = queryset, limit

    def count(self) -> int:
        return len(self) if len(self) < self.limit else self.queryset.count()


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """PostHog's `{count, next, previous, results}` pages; a limit above MAX_PAGE_SIZE is clamped to it."""

    max_limit = MAX_PAGE_SIZE

    def paginate_queryset(self, queryset, request: Request, view=None) -> list | None:
        """DRF's page, with the first page read before it is counted (see FirstPage)."""
        limit = self.get_limit(request)  # a malformed limit is reported before a malformed offset, as in DRF
        if limit is not None and self.get_offset(request) == 0:
            queryset = FirstPage(queryset, limit)
        return super().paginate_queryset(queryset, request, view)

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
