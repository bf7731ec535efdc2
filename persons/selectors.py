"""Reads of persons: by distinct id, with their distinct ids sorted as PostHog shows them."""

from django.db.models import Prefetch, QuerySet

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
