"""Event ingestion: validate a batch, store the valid events in bulk, keep event definitions current."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from events.clickhouse.client import clickhouse_client
from events.clickhouse.store import clickhouse_events_store, clickhouse_persons_sync
from events.partitions import event_partitions_ensure
from events.store import events_copy_store, events_store, unique_by_uuid
from events.validation import InvalidEvent, ValidEvent, event_validate
from experiments_api.models import Project
from persons.services.ingestion import PersonEvent, persons_ingest, with_person_retries


@dataclass(frozen=True)
class RejectedEvent:
    index: int
    detail: str


@dataclass
class IngestResult:
    """`stored` new rows; `duplicates` valid events that were already stored; `dropped` valid events PostHog drops
    (identify, alias or merge sent with `$process_person_profile: false`); `rejected` invalid events by index."""

    stored: int = 0
    duplicates: int = 0
    rejected: list[RejectedEvent] = field(default_factory=list)
    dropped: int = 0

    @property
    def accepted(self) -> int:
        return self.stored + self.duplicates + self.dropped


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
    stored, dropped = _store(project=project, events=valid, created_at=now, from_file=False)
    return IngestResult(stored=stored, duplicates=len(valid) - stored - dropped, rejected=rejected, dropped=dropped)


def events_import_batch(*, project: Project, events: Sequence[ValidEvent]) -> IngestResult:
    """Store already validated events from a file: all or nothing, with COPY on PostgreSQL."""
    stored, dropped = _store(project=project, events=events, created_at=timezone.now(), from_file=True)
    return IngestResult(stored=stored, duplicates=len(events) - stored - dropped, dropped=dropped)


def _store(*, project: Project, events: Sequence[ValidEvent], created_at: datetime, from_file: bool) -> tuple[int, int]:
    """Apply the batch's person work and store its events with their person ids, in one transaction; returns
    (events inserted, events dropped)."""
    unique = unique_by_uuid(events)
    kept = [event for event in unique if event.person is not None]
    dropped = len(unique) - len(kept)
    if not kept:
        return 0, dropped
    person_events = [PersonEvent(distinct_id=e.distinct_id, update=e.person, event_uuid=e.uuid) for e in kept]
    client = clickhouse_client()
    if client is not None:
        # Persons stay in the Django database; the events, then copies of their persons, go to ClickHouse.
        with_persons = with_person_retries(
            lambda contended: _with_persons(project, kept, person_events, created_at, contended=contended)
        )
        clickhouse_persons_sync(
            client,
            project_id=project.pk,
            distinct_ids={e.distinct_id for e in kept} | {e.person.merge_from for e in kept if e.person.merge_from},
            merged=any(e.person.merge_from for e in kept),
            version=int(created_at.timestamp() * 1_000_000),
        )
        return clickhouse_events_store(
            client, project_id=project.pk, events=with_persons, created_at=created_at
        ), dropped
    event_partitions_ensure(event.timestamp for event in kept)
    store = events_copy_store if from_file and connection.vendor == "postgresql" else events_store

    def persons_and_events(contended: bool) -> int:
        with_persons = _with_persons(project, kept, person_events, created_at, contended=contended)
        return store(project_id=project.pk, events=with_persons, created_at=created_at)

    return with_person_retries(persons_and_events), dropped


def _with_persons(
    project: Project, events: Sequence[ValidEvent], person_events: list[PersonEvent], now: datetime, *, contended: bool
) -> list[ValidEvent]:
    person_ids = persons_ingest(project_id=project.pk, events=person_events, now=now, contended=contended)
    for event, person_id in zip(events, person_ids, strict=True):
        event.person_id = person_id
    return events
