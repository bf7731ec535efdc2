"""Reads of persons: by distinct id, the list with its distinct ids, and the list filters of the persons API."""

import uuid

from django.db.models import Prefetch, Q, QuerySet

from flags.evaluation import property_filter_matches
from persons.models import Person, PersonDistinctId


def person_for_distinct_id(*, project_id: int, distinct_id: str) -> Person | None:
    row = (
        PersonDistinctId.objects.filter(project_id=project_id, distinct_id=distinct_id).select_related("person").first()
    )
    return row.person if row is not None else None


def persons_with_distinct_ids(*, project_id: int) -> QuerySet[Person]:
    """The project's persons, newest first, with their distinct ids prefetched."""
    return (
        Person.objects.filter(project_id=project_id)
        .prefetch_related(Prefetch("distinct_ids", queryset=PersonDistinctId.objects.order_by("id")))
        .order_by("-created_at", "-id")
    )


def persons_filtered(
    queryset: QuerySet[Person],
    *,
    distinct_id: str | None = None,
    email: str | None = None,
    search: str | None = None,
    properties: list[dict] | None = None,
    cohort: int | None = None,
) -> QuerySet[Person]:
    """PostHog's list filters: exact distinct id, exact email, search (email contains, exact distinct id or
    uuid), person property filters (all must match, PostHog's matching rules), cohort membership."""
    if distinct_id is not None:
        queryset = queryset.filter(distinct_ids__distinct_id=distinct_id)
    if email is not None:
        queryset = queryset.filter(properties__email=email)
    if search:
        matches = Q(properties__email__icontains=search) | Q(
            pk__in=PersonDistinctId.objects.filter(distinct_id=search).values("person_id")
        )
        if _as_uuid(search) is not None:
            matches |= Q(uuid=_as_uuid(search))
        queryset = queryset.filter(matches)
    if cohort is not None:
        queryset = queryset.filter(cohort_memberships__cohort_id=cohort)
    if properties:
        matching = [
            pk
            for pk, person_properties in queryset.values_list("pk", "properties").iterator(chunk_size=2000)
            if all(property_filter_matches(item, person_properties or {}) for item in properties)
        ]
        queryset = queryset.filter(pk__in=matching)
    return queryset


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
