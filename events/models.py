"""The event store that experiment results are computed from, and the names of the events seen."""

import uuid

from django.db import models
from django.utils import timezone

from experiments_api.models import Project
from persons.models import person_uuid


def _fill_person_id(event: "Event") -> None:
    """Events written outside ingestion (ORM writes) without a person are personless: their id's own uuid."""
    if event.person_id is None:
        event.person_id = person_uuid(event.project_id, event.distinct_id)


class EventQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for event in objs:
            _fill_person_id(event)
        return super().bulk_create(objs, *args, **kwargs)


class Event(models.Model):
    """One captured event. Indexes serve the results queries: (project, event, timestamp) finds exposures
    and metric events of one experiment's window; (project, distinct_id) joins a unit's events.

    On PostgreSQL the table is range-partitioned by month on `timestamp` (migration 0002, events/partitions.py),
    so a results query only scans the months of its window and old months can be dropped whole. A unique index on
    a partitioned table must contain the partition key, so re-sent events are deduplicated on
    (project, uuid, timestamp): PostHog's SDKs re-send a failed batch with the same uuid and the same event
    timestamp. Because the server corrects timestamps with the clock skew measured at each send, a re-send can land
    a few milliseconds apart; ingestion therefore also skips a uuid already stored within DEDUP_WINDOW of the
    corrected timestamp (events/store.py), which the same index answers.
    """

    id = models.BigAutoField(primary_key=True)
    # No single-column index: every query filters on the project together with other columns.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    uuid = models.UUIDField(default=uuid.uuid4)
    event = models.CharField(max_length=400)
    distinct_id = models.CharField(max_length=400)
    timestamp = models.DateTimeField(default=timezone.now)
    properties = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    # The person the event was ingested for; after a merge, persons_personoverride maps it to the survivor.
    person_id = models.UUIDField()

    objects = EventQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "uuid", "timestamp"], name="unique_event_uuid_per_project")
        ]
        indexes = [
            models.Index(fields=["project", "event", "timestamp"], name="event_project_event_ts"),
            models.Index(fields=["project", "distinct_id"], name="event_project_distinct_id"),
            models.Index(fields=["project", "person_id"], name="event_project_person"),
        ]

    def save(self, *args, **kwargs) -> None:
        _fill_person_id(self)
        super().save(*args, **kwargs)


class EventDefinition(models.Model):
    """A distinct event name of a project, with the earliest and latest event timestamps seen for it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="event_definitions")
    name = models.CharField(max_length=400)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_event_definition")]

    def __str__(self) -> str:
        return self.name
