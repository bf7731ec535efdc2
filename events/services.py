"""Event ingestion: validate a batch, store the valid events in bulk, keep event definitions current."""

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from events.partitions import event_partitions_ensure
from events.store import event_definitions_upsert, events_copy_insert, events_insert, unique_by_uuid
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
    """Store a batch of PostHog-style events: one INSERT for the batch, one upsert for the event definitions.

    Invalid events are rejected with their index and the valid ones kept. Timestamps are corrected for the
    sender's clock with `sent_at`/`offset`. The two statements run in autocommit, each atomic on its own, so no row
    lock is held across them; if the second fails, a re-send of the batch finds its events already stored and
    completes the definitions.
    """
    now = timezone.now()
    valid: list[ValidEvent] = []
    result = IngestResult()
    for index, raw in enumerate(events):
        try:
            valid.append(event_validate(raw, now=now, sent_at=sent_at))
        except InvalidEvent as error:
            result.rejected.append(RejectedEvent(index=index, detail=error.message))
    _store(project=project, events=valid, created_at=now, result=result, copy=False)
    return result


def events_import_batch(*, project: Project, events: Sequence[ValidEvent]) -> IngestResult:
    """Store already validated events (from a file), with COPY on PostgreSQL; all or nothing."""
    result = IngestResult()
    _store(project=project, events=events, created_at=timezone.now(), result=result, copy=True)
    return result


def _store(
    *, project: Project, events: Sequence[ValidEvent], created_at: datetime, result: IngestResult, copy: bool
) -> None:
    unique = unique_by_uuid(events)
    if not unique:
        return
    event_partitions_ensure(event.timestamp for event in unique)
    insert = events_copy_insert if copy and connection.vendor == "postgresql" else events_insert
    # An import batch is all or nothing; live ingestion stays in autocommit (see events_ingest).
    with transaction.atomic() if copy else nullcontext():
        result.stored = insert(project_id=project.pk, events=unique, created_at=created_at)
        event_definitions_upsert(project_id=project.pk, events=unique)
    result.duplicates = len(events) - result.stored
