"""Writes the persons API makes: property changes go through ingestion as events (as PostHog sends them), so
they follow the same rules and land in the event log; deletion removes the person, its ids and overrides."""

import uuid

from django.db import transaction
from django.utils import timezone

from events.clickhouse.client import clickhouse_client
from events.clickhouse.store import clickhouse_person_delete
from events.models import Event
from events.services import events_ingest
from persons.models import Person, PersonOverride

SET_EVENT = "$set"
DELETE_PROPERTY_EVENT = "$delete_person_property"


def _first_distinct_id(person: Person) -> str | None:
    row = person.distinct_ids.order_by("id").first()
    return row.distinct_id if row is not None else None


def _send(person: Person, name: str, properties: dict) -> None:
    distinct_id = _first_distinct_id(person)
    if distinct_id is None:
        return
    event = {"event": name, "distinct_id": distinct_id, "uuid": str(uuid.uuid4()), "properties": properties}
    events_ingest(project=person.project, events=[event])


def person_properties_set(*, person: Person, properties: dict) -> None:
    """A `$set` event for the person's first distinct id."""
    _send(person, SET_EVENT, {"$set": properties})


def person_property_delete(*, person: Person, key: str) -> None:
    """A `$delete_person_property` event unsetting `key`."""
    _send(person, DELETE_PROPERTY_EVENT, {"$unset": [key]})


def person_delete(*, person: Person, delete_events: bool) -> None:
    """Delete the person with its distinct ids, cohort memberships and hash key overrides; overrides that
    redirected merged persons to it go too. With `delete_events`, its events are deleted as well.

    With the ClickHouse event store the same deletion is written there (deleted rows, the events removed by a
    mutation) before the Django transaction commits: if ClickHouse fails the Django deletion rolls back and the
    request can be repeated (the ClickHouse writes are idempotent)."""
    with transaction.atomic():
        merged_into = list(
            PersonOverride.objects.select_for_update().filter(project_id=person.project_id, new_person_id=person.uuid)
        )
        if delete_events:
            person_ids = [person.uuid, *(override.old_person_id for override in merged_into)]
            Event.objects.filter(project_id=person.project_id, person_id__in=person_ids).delete()
        PersonOverride.objects.filter(pk__in=[override.pk for override in merged_into]).delete()
        client = clickhouse_client()
        if client is not None:
            clickhouse_person_delete(
                client,
                person=person,
                distinct_ids=list(person.distinct_ids.all()),
                merged=merged_into,
                delete_events=delete_events,
                now=timezone.now(),
            )
        person.delete()
