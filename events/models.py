"""The event store that experiment results are computed from, and the names of the events seen."""

import uuid

from django.db import models
from django.utils import timezone

from experiments_api.models import Project


class Event(models.Model):
    """One captured event. Indexes serve the results queries: (project, event, timestamp) finds exposures
    and metric events of one experiment's window; (project, distinct_id) joins a unit's events."""

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    uuid = models.UUIDField(default=uuid.uuid4)
    event = models.CharField(max_length=400)
    distinct_id = models.CharField(max_length=400)
    timestamp = models.DateTimeField(default=timezone.now)
    properties = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "uuid"], name="unique_event_uuid_per_project")]
        indexes = [
            models.Index(fields=["project", "event", "timestamp"], name="event_project_event_ts"),
            models.Index(fields=["project", "distinct_id"], name="event_project_distinct_id"),
        ]


class EventDefinition(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="event_definitions")
    name = models.CharField(max_length=400)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_event_definition")]

    def __str__(self) -> str:
        return self.name
