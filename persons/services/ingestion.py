"""The person work of one ingested batch, PostHog's rules applied in event order, written in a bounded number of
statements: one read of the batch's distinct ids (persons locked in id order), then a few bulk writes.

Events are resolved against the state at the end of the batch, so an event always carries the person its distinct
id belongs to once the batch is stored; merges of persons that earlier batches' events carry leave overrides.
Concurrent batches that create the same person or distinct id collide on a unique constraint (or a deadlock); the
losing attempt is rolled back to its savepoint and replayed against the rows the winner committed.
"""

import json
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Value, When

from persons.models import (
    CohortPerson,
    FeatureFlagHashKeyOverride,
    Person,
    PersonDistinctId,
    PersonlessDistinctId,
    PersonOverride,
    person_uuid,
)
from persons.properties import PersonUpdate, distinct_id_is_illegal, properties_apply, properties_at_creation

T = TypeVar("T")
MAX_ATTEMPTS = 5
# Personless ids this process has seen stored (rows are never deleted but with their project), so the anonymous
# traffic of a returning visitor does not rewrite its row batch after batch; bounded, oldest forgotten first.
PERSONLESS_CACHE_SIZE = 100_000
_recorded_personless: OrderedDict[tuple[int, str], None] = OrderedDict()
# PostgreSQL's deadlock_detected and serialization_failure: the attempt is replayed like a unique-key collision.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


@dataclass(frozen=True)
class PersonEvent:
    """What the person step needs of one event."""

    distinct_id: str
    update: PersonUpdate
    event_uuid: uuid.UUID | None = None


@dataclass(eq=False)
class _Person:
    uuid: uuid.UUID
    properties: dict
    is_identified: bool
    created_at: datetime
    version: int
    pk: int | None = None  # None until inserted
    changed: bool = False
    merged_into: "_Person | None" = None

    def final(self) -> "_Person":
        person = self
        while person.merged_into is not None:
            person = person.merged_into
        return person


@dataclass
class _Batch:
    project_id: int
    now: datetime
    owners: dict[str, _Person] = field(default_factory=dict)
    personless: set[str] = field(default_factory=set)
    known_personless: set[str] = field(default_factory=set)
    new_persons: list[_Person] = field(default_factory=list)
    # distinct id → version, for ids that join a person in this batch.
    new_distinct_ids: dict[str, int] = field(default_factory=dict)
    # Existing persons (with a pk) merged into another one.
    merged: list[_Person] = field(default_factory=list)
    # old uuid → person the events carrying it now belong to.
    overrides: dict[uuid.UUID, _Person] = field(default_factory=dict)
    merged_personless: set[str] = field(default_factory=set)


def persons_ingest(*, project_id: int, events: Sequence[PersonEvent], now: datetime) -> list[uuid.UUID]:
    """Apply the batch's person work and return each event's person uuid. Call inside a transaction that
    `with_person_retries` replays when a concurrent batch wins a race."""
    batch = _load(project_id, events, now)
    for event in events:
        _apply(batch, event)
    _write(batch)
    return [_event_person(batch, event) for event in events]


def with_person_retries(work: Callable[[], T]) -> T:
    """Run `work` in a transaction (a savepoint when nested), replayed from scratch when it loses a race to a
    concurrent batch: a unique-key collision on a person or distinct id, or a deadlock."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return work()
        except DatabaseError as error:
            retryable = isinstance(error, IntegrityError) or _sqlstate(error) in RETRYABLE_SQLSTATES
            if not retryable or attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _remember_personless(recorded: list[tuple[int, str]]) -> None:
    for key in recorded:
        _recorded_personless[key] = None
    while len(_recorded_personless) > PERSONLESS_CACHE_SIZE:
        _recorded_personless.popitem(last=False)


def _sqlstate(error: DatabaseError) -> str | None:
    return getattr(error.__cause__, "sqlstate", None)


# PostgreSQL: the batch's distinct ids with their persons, locked in id order (a concurrent batch touching the same
# persons waits for this one), as plain rows rather than model instances.
_LOAD_SQL = f"""
    SELECT owned.distinct_id, person.id, person.uuid, person.properties, person.is_identified, person.created_at,
        person.version
    FROM {PersonDistinctId._meta.db_table} owned JOIN {Person._meta.db_table} person ON person.id = owned.person_id
    WHERE owned.project_id = %s AND owned.distinct_id = ANY(%s)
    ORDER BY person.id
"""


def _owned_rows(project_id: int, wanted: set[str], *, lock: bool) -> Iterable[tuple]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_LOAD_SQL + (" FOR UPDATE OF person" if lock else ""), [project_id, list(wanted)])
            return [
                (*row[:3], json.loads(row[3]) if isinstance(row[3], str) else row[3], *row[4:])
                for row in cursor.fetchall()
            ]
    rows = PersonDistinctId.objects.filter(project_id=project_id, distinct_id__in=wanted).order_by("person_id")
    return rows.values_list(
        "distinct_id",
        "person_id",
        "person__uuid",
        "person__properties",
        "person__is_identified",
        "person__created_at",
        "person__version",
    )


def _load(project_id: int, events: Sequence[PersonEvent], now: datetime) -> _Batch:
    batch = _Batch(project_id=project_id, now=now)
    locking = any(event.update.process for event in events)
    merging = {
        distinct_id
        for event in events
        if event.update.merge_from
        for distinct_id in (event.update.merge_from, event.distinct_id)
    }
    wanted = {event.distinct_id for event in events} | merging
    persons: dict[int, _Person] = {}
    for distinct_id, pk, person_uuid_, properties, is_identified, created_at, version in _owned_rows(
        project_id, wanted, lock=locking
    ):
        if pk not in persons:
            persons[pk] = _Person(
                uuid=person_uuid_,
                properties=dict(properties or {}),
                is_identified=is_identified,
                created_at=created_at,
                version=version,
                pk=pk,
            )
        batch.owners[distinct_id] = persons[pk]
    # Whether an id was seen personless only matters to ids that join a person in a merge.
    if merging:
        batch.known_personless = set(
            PersonlessDistinctId.objects.filter(project_id=project_id, distinct_id__in=merging).values_list(
                "distinct_id", flat=True
            )
        )
    return batch


def _seen_personless(batch: _Batch, distinct_id: str) -> bool:
    return distinct_id in batch.known_personless or distinct_id in batch.personless


def _owner(batch: _Batch, distinct_id: str) -> _Person | None:
    person = batch.owners.get(distinct_id)
    return person.final() if person is not None else None


def _create(batch: _Batch, distinct_ids: list[str], update: PersonUpdate, *, uuid_from: str, event_uuid) -> _Person:
    properties = properties_at_creation(update)
    if event_uuid is not None:
        properties["$creator_event_uuid"] = str(event_uuid)
    person = _Person(
        uuid=person_uuid(batch.project_id, uuid_from),
        properties=properties,
        is_identified=False,
        created_at=batch.now,
        version=0,
    )
    batch.new_persons.append(person)
    for distinct_id in distinct_ids:
        _attach(batch, distinct_id, person)
    return person


def _attach(batch: _Batch, distinct_id: str, person: _Person) -> None:
    """`distinct_id`, without a person so far, joins `person`; its personless events need an override."""
    batch.owners[distinct_id] = person
    seen_personless = _seen_personless(batch, distinct_id)
    batch.new_distinct_ids[distinct_id] = 1 if seen_personless else 0
    if seen_personless:
        batch.merged_personless.add(distinct_id)
        own = person_uuid(batch.project_id, distinct_id)
        if own != person.uuid:
            batch.overrides[own] = person


def _mark_identified(person: _Person) -> None:
    if not person.is_identified:
        person.is_identified = True
        person.changed = True


def _merge(batch: _Batch, other: str, into: str, update: PersonUpdate, event_uuid) -> _Person | None:
    """PostHog's three cases; None when the ids cannot be merged (the event then updates its own person)."""
    if other == into or distinct_id_is_illegal(other) or distinct_id_is_illegal(into):
        return None
    other_person, into_person = _owner(batch, other), _owner(batch, into)
    if other_person is None and into_person is None:
        uuid_from = other if _seen_personless(batch, other) and not _seen_personless(batch, into) else into
        person = _create(batch, [into, other], update, uuid_from=uuid_from, event_uuid=event_uuid)
        person.is_identified = True
        return person
    if other_person is None or into_person is None:
        person = other_person or into_person
        _attach(batch, into if into_person is None else other, person)
        _mark_identified(person)
        _apply_properties(person, update)
        return person
    if other_person is not into_person and (not other_person.is_identified or update.dangerous):
        _merge_persons(batch, other_person, into_person)
    # A refused merge (the other person is identified) leaves both; the event's person is still identified.
    _mark_identified(into_person)
    _apply_properties(into_person, update)
    return into_person


def _merge_persons(batch: _Batch, other: _Person, into: _Person) -> None:
    into.properties = {**other.properties, **into.properties}
    into.created_at = min(into.created_at, other.created_at)
    into.version = max(into.version, other.version) + 1
    into.changed = True
    other.merged_into = into
    if other.pk is not None:
        batch.merged.append(other)
        batch.overrides[other.uuid] = into
    else:
        batch.new_persons.remove(other)


def _apply_properties(person: _Person, update: PersonUpdate) -> None:
    changed, significant = properties_apply(person.properties, update)
    if changed and (significant or update.force_write):
        person.version += 1
        person.changed = True


def _apply(batch: _Batch, event: PersonEvent) -> None:
    update = event.update
    if not update.process:
        if _owner(batch, event.distinct_id) is None:
            batch.personless.add(event.distinct_id)
        return
    if update.merge_from and _merge(batch, update.merge_from, event.distinct_id, update, event.event_uuid):
        return
    person = _owner(batch, event.distinct_id)
    if person is None:
        _create(batch, [event.distinct_id], update, uuid_from=event.distinct_id, event_uuid=event.event_uuid)
    else:
        _apply_properties(person, update)


def _event_person(batch: _Batch, event: PersonEvent) -> uuid.UUID:
    person = _owner(batch, event.distinct_id)
    return person.uuid if person is not None else person_uuid(batch.project_id, event.distinct_id)


def _write(batch: _Batch) -> None:
    project_id = batch.project_id
    # Sorted, so concurrent batches creating the same persons or ids wait on each other in one order.
    batch.new_persons.sort(key=lambda person: person.uuid)
    new_personless = sorted(
        distinct_id
        for distinct_id in batch.personless - batch.known_personless - set(batch.owners)
        if (project_id, distinct_id) not in _recorded_personless
    )
    if connection.vendor == "postgresql":
        _insert_rows_postgres(batch, new_personless)
    else:
        _insert_rows(batch, new_personless)
    if new_personless:
        recorded = [(project_id, distinct_id) for distinct_id in new_personless]
        transaction.on_commit(lambda: _remember_personless(recorded))
    new = set(map(id, batch.new_persons))
    changed = [
        person
        for person in {id(p): p for p in batch.owners.values()}.values()
        if person.pk is not None and person.changed and person.merged_into is None and id(person) not in new
    ]
    if changed:
        _update_persons(changed)
    if batch.merged:
        _write_merges(batch)
    _write_overrides(batch)
    if batch.merged_personless:
        PersonlessDistinctId.objects.filter(
            project_id=project_id, distinct_id__in=batch.merged_personless, is_merged=False
        ).update(is_merged=True)


# PostgreSQL: the batch's new persons, their new distinct ids (and those joining existing persons) and new
# personless ids in one statement; the new persons' ids come back to the caller.
_INSERT_ROWS_SQL = f"""
    WITH new_persons AS (
        INSERT INTO {Person._meta.db_table} (project_id, uuid, properties, is_identified, created_at, version)
        SELECT %(project)s, person.uuid, person.properties, person.is_identified, person.created_at, person.version
        FROM json_to_recordset(%(persons)s::json) AS person(
            uuid uuid, properties jsonb, is_identified boolean, created_at timestamptz, version bigint)
        ORDER BY person.uuid
        RETURNING id, uuid
    ), new_distinct_ids AS (
        INSERT INTO {PersonDistinctId._meta.db_table} (project_id, person_id, distinct_id, version)
        SELECT %(project)s, COALESCE(owned.person_id, new_persons.id), owned.distinct_id, owned.version
        FROM json_to_recordset(%(distinct_ids)s::json)
            AS owned(distinct_id text, person_id bigint, person_uuid uuid, version bigint)
        LEFT JOIN new_persons ON new_persons.uuid = owned.person_uuid
        ORDER BY owned.distinct_id
        RETURNING 1
    ), new_personless AS (
        INSERT INTO {PersonlessDistinctId._meta.db_table} (project_id, distinct_id, is_merged, created_at)
        SELECT %(project)s, personless.distinct_id, FALSE, %(now)s
        FROM json_array_elements_text(%(personless)s::json) AS personless(distinct_id)
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT id, uuid, (SELECT COUNT(*) FROM new_distinct_ids), (SELECT COUNT(*) FROM new_personless)
    FROM new_persons
"""


def _insert_rows_postgres(batch: _Batch, new_personless: list[str]) -> None:
    if not (batch.new_persons or batch.new_distinct_ids or new_personless):
        return
    persons = [
        {
            "uuid": str(person.uuid),
            "properties": person.properties,
            "is_identified": person.is_identified,
            "created_at": person.created_at.isoformat(),
            "version": person.version,
        }
        for person in batch.new_persons
    ]
    distinct_ids = []
    for distinct_id, version in sorted(batch.new_distinct_ids.items()):
        owner = batch.owners[distinct_id].final()
        distinct_ids.append(
            {"distinct_id": distinct_id, "person_id": owner.pk, "person_uuid": str(owner.uuid), "version": version}
        )
    params = {
        "project": batch.project_id,
        "now": batch.now,
        "persons": json.dumps(persons, cls=DjangoJSONEncoder),
        "distinct_ids": json.dumps(distinct_ids),
        "personless": json.dumps(new_personless),
    }
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_ROWS_SQL, params)
        pks = {row_uuid: pk for pk, row_uuid, _, _ in cursor.fetchall()}
    for person in batch.new_persons:
        person.pk = pks[person.uuid]


def _insert_rows(batch: _Batch, new_personless: list[str]) -> None:
    """The same writes through the ORM (the embedded SQLite)."""
    project_id = batch.project_id
    if batch.new_persons:
        rows = Person.objects.bulk_create(
            Person(
                project_id=project_id,
                uuid=person.uuid,
                properties=person.properties,
                is_identified=person.is_identified,
                created_at=person.created_at,
                version=person.version,
            )
            for person in batch.new_persons
        )
        for person, row in zip(batch.new_persons, rows, strict=True):
            person.pk = row.pk
    if batch.new_distinct_ids:
        PersonDistinctId.objects.bulk_create(
            PersonDistinctId(
                project_id=project_id,
                person_id=batch.owners[distinct_id].final().pk,
                distinct_id=distinct_id,
                version=version,
            )
            for distinct_id, version in sorted(batch.new_distinct_ids.items())
        )
    if new_personless:
        PersonlessDistinctId.objects.bulk_create(
            [PersonlessDistinctId(project_id=project_id, distinct_id=distinct_id) for distinct_id in new_personless],
            ignore_conflicts=True,
        )


# PostgreSQL: the changed persons as one JSON parameter (much cheaper to build than the ORM's CASE per row).
_UPDATE_PERSONS_SQL = f"""
    UPDATE {Person._meta.db_table} AS person SET properties = changed.properties,
        is_identified = changed.is_identified, created_at = changed.created_at, version = changed.version
    FROM json_to_recordset(%s::json)
        AS changed(id bigint, properties jsonb, is_identified boolean, created_at timestamptz, version bigint)
    WHERE person.id = changed.id
"""


def _update_persons(changed: list[_Person]) -> None:
    if connection.vendor == "postgresql":
        rows = [
            {
                "id": person.pk,
                "properties": person.properties,
                "is_identified": person.is_identified,
                "created_at": person.created_at.isoformat(),
                "version": person.version,
            }
            for person in changed
        ]
        with connection.cursor() as cursor:
            cursor.execute(_UPDATE_PERSONS_SQL, [json.dumps(rows, cls=DjangoJSONEncoder)])
        return
    Person.objects.bulk_update(
        [
            Person(
                pk=person.pk,
                properties=person.properties,
                is_identified=person.is_identified,
                created_at=person.created_at,
                version=person.version,
            )
            for person in changed
        ],
        ["properties", "is_identified", "created_at", "version"],
    )


def _target_case(merged: list[_Person], column: str) -> Case:
    return Case(*(When(**{column: person.pk}, then=Value(person.final().pk)) for person in merged))


def _write_merges(batch: _Batch) -> None:
    """Move the merged persons' distinct ids, cohort memberships and hash key overrides to their survivors (the
    survivor's own memberships and overrides win), then delete the merged persons."""
    merged = batch.merged
    merged_pks = [person.pk for person in merged]
    PersonDistinctId.objects.filter(person_id__in=merged_pks).update(
        person_id=_target_case(merged, "person_id"), version=F("version") + 1
    )
    for model, key in ((FeatureFlagHashKeyOverride, "feature_flag_key"), (CohortPerson, "cohort_id")):
        target = _target_case(merged, "person_id")
        clashing = model.objects.annotate(target=target).filter(
            Exists(model.objects.filter(person_id=OuterRef("target"), **{key: OuterRef(key)})),
            person_id__in=merged_pks,
        )
        model.objects.filter(pk__in=clashing.values("pk")).delete()
        model.objects.filter(person_id__in=merged_pks).update(person_id=_target_case(merged, "person_id"))
    # Nothing refers to the merged persons any more: one DELETE, without the collector's reads and cascades.
    merged_persons = Person.objects.filter(pk__in=merged_pks)
    merged_persons._raw_delete(merged_persons.db)


def _write_overrides(batch: _Batch) -> None:
    """New overrides, and earlier ones that pointed at a merged person now point at its survivor."""
    project_id = batch.project_id
    merged_uuids = {person.uuid: person.final().uuid for person in batch.merged}
    if merged_uuids:
        PersonOverride.objects.filter(project_id=project_id, new_person_id__in=list(merged_uuids)).update(
            new_person_id=Case(*(When(new_person_id=old, then=Value(new)) for old, new in merged_uuids.items()))
        )
    overrides = {old: person.final().uuid for old, person in batch.overrides.items()}
    overrides = {old: new for old, new in overrides.items() if old != new}
    if overrides:
        PersonOverride.objects.bulk_create(
            [
                PersonOverride(project_id=project_id, old_person_id=old, new_person_id=new, created_at=batch.now)
                for old, new in sorted(overrides.items())
            ],
            update_conflicts=True,
            unique_fields=["project", "old_person_id"],
            update_fields=["new_person_id", "created_at"],
        )
