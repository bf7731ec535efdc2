"""Event ingestion: validate a batch, store the valid events in bulk, keep event definitions current."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from events.partitions import event_partitions_ensure
from events.store import events_copy_store, events_store, unique_by_uuid
from events.validation import InvalidEvent, ValidEvent, event_validate
from experiments_api.models import Project


@dataclass(frozen=True)
class RejectedEvent:
    index: int
    detail: str


@dataclass
class IngestResult:
    """`stored` new rows; `duplicates` valid events that were already stored; `rejected` invalid events by index."""

    stored: int = 0
    duplicates: int = 0
    rejected: list[RejectedEvent] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.stored + self.duplicates


def events_ingest(*, project: Project, events: list[Any], sent_at: datetime | None = None) -> IngestResult:
    """Store a batch of PostHog-style events in one statement that also widens the event definitions' first/last
    seen (two on SQLite). Invalid events are rejected with their index and the valid ones kept. Timestamps are
    corrected for the sender's clock with `sent_at`/`offset`."""
    now = timezone.now()
    valid: list[ValidEvent] = []
    rejected: list[RejectedEvent] = []
    for index, raw in enumerate(events):
        try:
            valid.append(event_validate(raw, now=now, sent_at=sent_at))
        except InvalidEvent as error:
            rejected.append(RejectedEvent(index=index, detail=error.message))
    stored = _store(project=project, events=valid, created_at=now, from_file=False)
    return IngestResult(stored=stored, duplicates=len(valid) - stored, rejected=rejected)


def events_import_batch(*, project: Project, events: Sequence[ValidEvent]) -> IngestResult:
    """Store already validated events from a file: all or nothing, with COPY on PostgreSQL."""
    stored = _store(project=project, events=events, created_at=timezone.now(), from_file=True)
    return IngestResult(stored=stored, duplicates=len(events) - stored)


def _store(*, project: Project, events: Sequence[ValidEvent], created_at: datetime, from_file: bool) -> int:
    unique = unique_by_uuid(events)
    if not unique:
        return 0
    event_partitions_ensure(event.timestamp for event in unique)
    if not from_file:
        return events_store(project_id=project.pk, events=unique, created_at=created_at)
    with transaction.atomic():
        store = events_copy_store if connection.vendor == "postgresql" else events_store
        return store(project_id=project.pk, events=unique, created_at=created_at)
