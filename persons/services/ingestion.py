"""The person work of one ingested batch: PostHog's rules applied in event order against one read of the batch's
distinct ids, then written in a bounded number of set-based statements. On PostgreSQL a batch is one round trip
to lock and read, one statement writing new persons, distinct ids and personless ids, changed persons and
overrides (upserts and an UPDATE from one JSON parameter each), and a few more only when stored persons merge.

Events are resolved against the state at the end of the batch, so an event carries the person its distinct id
belongs to once the batch is stored; merges of persons that earlier batches' events carry leave overrides.

Concurrent batches (PostgreSQL):
- The ids a batch may give a person (those of person-processing events and merges) are locked first with
  transaction advisory locks, in key order: batches for the same ids run one after another (as PostHog's
  partitioning by distinct id has them), and the read that follows sees the persons the previous one created.
  A batch with more than MAX_ID_LOCKS such ids locks its project instead, which every other lock holder shares.
- The read takes no row locks. A changed person is written only while its version is the one read, a merged
  person deleted likewise (a person can be changed through another of its ids); new persons and ids are inserted
  with ON CONFLICT DO NOTHING.
- An id joining a person marks its personless row merged, and a new personless row must not find one merged: an
  anonymous batch racing its $identify (personless ids are not locked) is caught on either side.
Any shortfall is a LostRace: the attempt is rolled back and replayed with every id and person of the batch locked
before the read. Unique-key collisions and deadlocks are replayed the same way; a batch still losing after
MAX_ATTEMPTS is answered 503, never 500. (The read used to lock the persons it found and wait for them while its
snapshot of the ids without persons aged; the replays repeated that read until an IntegrityError answered 500.)
"""

import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Value, When

from experiments_api.exceptions import ServiceUnavailable
from persons import messages
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

logger = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ATTEMPTS = 5
# PostHog's rule: a personless event is attributed to its id's person only once that person is older than this
# (a person created moments ago may come from an $identify processed alongside the anonymous events).
PERSONLESS_ATTRIBUTION_MIN_AGE = timedelta(minutes=1)
# Personless ids this process has seen stored (rows are never deleted but with their project), so the anonymous
# traffic of a returning visitor does not rewrite its row batch after batch; bounded, oldest forgotten first.
PERSONLESS_CACHE_SIZE = 100_000
_recorded_personless: OrderedDict[tuple[int, str], None] = OrderedDict()
# PostgreSQL's deadlock_detected and serialization_failure: the attempt is replayed like a unique-key collision.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
# Advisory lock keys pg_advisory_xact_lock(namespace, key). Every batch locking distinct ids holds its project's
# key shared; a batch with more ids than MAX_ID_LOCKS holds it exclusively instead of locking each id, so one
# transaction never takes more than MAX_ID_LOCKS + 1 entries of PostgreSQL's lock table.
PROJECT_LOCK_NAMESPACE = 7_415_002
DISTINCT_ID_LOCK_NAMESPACE = 7_415_003
MAX_ID_LOCKS = 256


class LostRace(Exception):
    """A concurrent batch changed what this batch's person work was computed from; the attempt is replayed."""


@dataclass(frozen=True)
class PersonEvent:
    """What the person step needs of one event."""

    distinct_id: str
    update: PersonUpdate
    event_uuid: uuid.UUID | None = None


@dataclass(eq=False)
class _Person:
    uuid: uuid.UUID
    # None for a stored person read only to attribute personless events (it is never changed in the batch).
    properties: dict | None
    is_identified: bool
    created_at: datetime
    version: int
    pk: int | None = None  # None until inserted
    loaded_version: int | None = None  # the version read, for stored persons
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
    # A replay after a lost race: every distinct id and person of the batch was locked before the read.
    contended: bool = False
    owners: dict[str, _Person] = field(default_factory=dict)
    # Distinct ids of merge events: their personless rows were read, so joining a person checks that read.
    merging: set[str] = field(default_factory=set)
    personless: set[str] = field(default_factory=set)
    known_personless: set[str] = field(default_factory=set)
    new_persons: list[_Person] = field(default_factory=list)
    # distinct id → version, for ids that join a person in this batch.
    new_distinct_ids: dict[str, int] = field(default_factory=dict)
    # Existing persons (with a pk) merged into another one.
    merged: list[_Person] = field(default_factory=list)
    # old uuid → person the events carrying it now belong to.
    overrides: dict[uuid.UUID, _Person] = field(default_factory=dict)
    # Ids joining a person whose personless row is written merged.
    merged_personless: set[str] = field(default_factory=set)
    uuids: dict[str, uuid.UUID] = field(default_factory=dict)

    def own_uuid(self, distinct_id: str) -> uuid.UUID:
        """The uuid of `distinct_id`'s own person (and of its personless events), computed once per batch."""
        found = self.uuids.get(distinct_id)
        if found is None:
            found = self.uuids[distinct_id] = person_uuid(self.project_id, distinct_id)
        return found


def persons_ingest(
    *, project_id: int, events: Sequence[PersonEvent], now: datetime, contended: bool = False
) -> list[uuid.UUID]:
    """Apply the batch's person work and return each event's person uuid. Call it through `with_person_retries`,
    which replays it (with `contended`) when a concurrent batch wins a race."""
    batch = _load(project_id, events, now, contended=contended)
    for event in events:
        _apply(batch, event)
    _write(batch)
    return [_event_person(batch, event) for event in events]


def with_person_retries(work: Callable[[bool], T]) -> T:
    """Run `work(contended)` in a transaction (a savepoint when nested), replayed from scratch with
    `contended=True` when it loses a race to a concurrent batch: LostRace, a unique-key collision or a deadlock.
    Still losing after MAX_ATTEMPTS: ServiceUnavailable (503, the SDK retries later)."""
    lost: Exception | None = None
    for attempt in range(MAX_ATTEMPTS):
        try:
            with transaction.atomic():
                return work(attempt > 0)
        except LostRace as error:
            lost = error
        except DatabaseError as error:
            if not (isinstance(error, IntegrityError) or _sqlstate(error) in RETRYABLE_SQLSTATES):
                raise
            lost = error
    logger.warning("Person ingestion lost %d races in a row", MAX_ATTEMPTS, exc_info=lost)
    raise ServiceUnavailable(messages.PERSONS_CONTENDED) from lost


def _remember_personless(recorded: list[tuple[int, str]]) -> None:
    for key in recorded:
        _recorded_personless[key] = None
    while len(_recorded_personless) > PERSONLESS_CACHE_SIZE:
        _recorded_personless.popitem(last=False)


def _sqlstate(error: DatabaseError) -> str | None:
    return getattr(error.__cause__, "sqlstate", None)


# PostgreSQL: the project's key, then the distinct ids' keys in key order, as statements of their own (one
# statement's order of evaluation is not guaranteed). Sent in the same round trip as what follows.
_LOCK_PROJECT_SQL = "SELECT pg_advisory_xact_lock{mode}(%(project_namespace)s, %(project)s);"
_LOCK_IDS_SQL = """
    SELECT count(pg_advisory_xact_lock(%(id_namespace)s, key)) FROM (
        SELECT DISTINCT hashtext(%(project)s::text || ':' || distinct_id) AS key
        FROM json_array_elements_text(%(lock_ids)s::json) AS distinct_id ORDER BY key
    ) AS keys;
"""


def _lock_sql(params: dict, distinct_ids: Iterable[str]) -> str:
    """The statements locking `distinct_ids` (their parameters added to `params`)."""
    ids = sorted(set(distinct_ids))
    params.update(
        project_namespace=PROJECT_LOCK_NAMESPACE, id_namespace=DISTINCT_ID_LOCK_NAMESPACE, lock_ids=json.dumps(ids)
    )
    if len(ids) > MAX_ID_LOCKS:
        return _LOCK_PROJECT_SQL.format(mode="")
    return _LOCK_PROJECT_SQL.format(mode="_shared") + _LOCK_IDS_SQL


def _last_result(cursor) -> None:
    """Move to the result of the last statement of a multi-statement execute (Django's psycopg cursors bind
    parameters client-side, which allows several statements in one round trip)."""
    while cursor.nextset():
        pass


# PostgreSQL: the batch's distinct ids with their persons as plain rows (properties only where the batch may
# change the person), and for the ids of merge events whether they were seen personless. The LATERAL probes with
# LIMIT keep each id an index lookup: a new project's statistics would otherwise pick a scan of all its ids.
_LOAD_SQL = f"""
    SELECT wanted.distinct_id, owner.id, owner.uuid, CASE WHEN wanted.may_change THEN owner.properties END,
        owner.is_identified, owner.created_at, owner.version, personless.found IS NOT NULL
    FROM json_to_recordset(%(wanted)s::json) AS wanted(distinct_id text, may_change boolean, merging boolean)
    LEFT JOIN LATERAL (
        SELECT person.id, person.uuid, person.properties, person.is_identified, person.created_at, person.version
        FROM {PersonDistinctId._meta.db_table} AS owned
        JOIN {Person._meta.db_table} AS person ON person.id = owned.person_id
        WHERE owned.project_id = %(project)s AND owned.distinct_id = wanted.distinct_id
        LIMIT 1
    ) AS owner ON TRUE
    LEFT JOIN LATERAL (
        SELECT 1 AS found FROM {PersonlessDistinctId._meta.db_table} AS personless
        WHERE wanted.merging AND personless.project_id = %(project)s AND personless.distinct_id = wanted.distinct_id
        LIMIT 1
    ) AS personless ON TRUE
    WHERE owner.id IS NOT NULL OR wanted.merging
"""


# PostgreSQL, on a replay: the persons the batch may change, locked in id order before they are read (by a
# statement of its own, so the read that follows sees their latest versions).
_LOCK_PERSONS_SQL = f"""
    SELECT person.id FROM json_array_elements_text(%(full)s::json) AS wanted(distinct_id)
    JOIN LATERAL (
        SELECT owned.person_id FROM {PersonDistinctId._meta.db_table} AS owned
        WHERE owned.project_id = %(project)s AND owned.distinct_id = wanted.distinct_id
        LIMIT 1
    ) AS owned ON TRUE
    JOIN {Person._meta.db_table} AS person ON person.id = owned.person_id
    ORDER BY person.id
    FOR UPDATE OF person;
"""


def _rows_postgres(project_id: int, wanted: set[str], full: set[str], merging: set[str], *, contended: bool) -> list:
    params = {
        "project": project_id,
        "wanted": json.dumps(
            [
                {"distinct_id": distinct_id, "may_change": distinct_id in full, "merging": distinct_id in merging}
                for distinct_id in wanted
            ]
        ),
        "full": json.dumps(list(full)),
    }
    if contended:
        # No other batch can create one of its ids or change one of its persons between this read and its writes.
        sql = _lock_sql(params, wanted) + _LOCK_PERSONS_SQL + _LOAD_SQL
    else:
        # The ids the batch may give a person: batches for the same ids run one after another.
        sql = (_lock_sql(params, full) if full else "") + _LOAD_SQL
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        _last_result(cursor)
        return [
            (*row[:3], json.loads(row[3]) if isinstance(row[3], str) else row[3], *row[4:]) for row in cursor.fetchall()
        ]


def _rows_orm(project_id: int, wanted: set[str], merging: set[str]) -> list:
    """The same rows through the ORM (the embedded SQLite, whose writers are serialised)."""
    known = set(
        PersonlessDistinctId.objects.filter(project_id=project_id, distinct_id__in=merging).values_list(
            "distinct_id", flat=True
        )
        if merging
        else ()
    )
    rows = PersonDistinctId.objects.filter(project_id=project_id, distinct_id__in=wanted).values_list(
        "distinct_id",
        "person_id",
        "person__uuid",
        "person__properties",
        "person__is_identified",
        "person__created_at",
        "person__version",
    )
    found = [(*row, row[0] in known) for row in rows]
    owned = {row[0] for row in found}
    return found + [(distinct_id, *[None] * 6, distinct_id in known) for distinct_id in merging - owned]


def _load(project_id: int, events: Sequence[PersonEvent], now: datetime, *, contended: bool) -> _Batch:
    batch = _Batch(project_id=project_id, now=now, contended=contended)
    batch.merging = {
        distinct_id
        for event in events
        if event.update.merge_from
        for distinct_id in (event.update.merge_from, event.distinct_id)
    }
    wanted = {event.distinct_id for event in events} | batch.merging
    full = {event.distinct_id for event in events if event.update.process} | batch.merging
    if connection.vendor == "postgresql":
        rows = _rows_postgres(project_id, wanted, full, batch.merging, contended=contended)
    else:
        rows = _rows_orm(project_id, wanted, batch.merging)
    persons: dict[int, _Person] = {}
    for distinct_id, pk, uuid_, properties, is_identified, created_at, version, known_personless in rows:
        if known_personless:
            batch.known_personless.add(distinct_id)
        if pk is None:
            continue
        person = persons.get(pk)
        if person is None:
            person = persons[pk] = _Person(
                uuid=uuid_,
                properties=None,
                is_identified=is_identified,
                created_at=created_at,
                version=version,
                pk=pk,
                loaded_version=version,
            )
        if person.properties is None and distinct_id in full:
            person.properties = dict(properties or {})
        batch.owners[distinct_id] = person
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
        uuid=batch.own_uuid(uuid_from),
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
    # A stored person gaining an id is written, so a concurrent merge of that person cannot miss the new id.
    person.changed = True
    seen_personless = _seen_personless(batch, distinct_id)
    batch.new_distinct_ids[distinct_id] = 1 if seen_personless else 0
    if seen_personless or distinct_id in batch.merging:
        batch.merged_personless.add(distinct_id)
    if seen_personless:
        own = batch.own_uuid(distinct_id)
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
    """The event's person: its id's person at the end of the batch; a personless event keeps its id's own uuid
    unless that person was created more than PERSONLESS_ATTRIBUTION_MIN_AGE ago."""
    person = _owner(batch, event.distinct_id)
    if person is None or (not event.update.process and person.created_at > batch.now - PERSONLESS_ATTRIBUTION_MIN_AGE):
        return batch.own_uuid(event.distinct_id)
    return person.uuid


def _write(batch: _Batch) -> None:
    project_id = batch.project_id
    # Sorted, so concurrent batches creating the same persons or ids wait on each other in one order.
    batch.new_persons.sort(key=lambda person: person.uuid)
    new_personless = sorted(
        distinct_id
        for distinct_id in batch.personless - batch.known_personless - set(batch.owners)
        if (project_id, distinct_id) not in _recorded_personless
    )
    new = set(map(id, batch.new_persons))
    changed = sorted(
        (
            person
            for person in {id(p): p for p in batch.owners.values()}.values()
            if person.pk is not None and person.changed and person.merged_into is None and id(person) not in new
        ),
        key=lambda person: person.pk,
    )
    for person in changed:
        # Every write moves the version on, which is what a concurrent writer's compare-and-set checks.
        if person.version == person.loaded_version:
            person.version += 1
    if connection.vendor == "postgresql":
        _write_postgres(batch, new_personless, changed)
    else:
        _write_orm(batch, new_personless, changed)
    if batch.merged:
        _write_merges(batch)
    if new_personless:
        recorded = [(project_id, distinct_id) for distinct_id in new_personless]
        transaction.on_commit(lambda: _remember_personless(recorded))


# PostgreSQL: the parts of the batch's one write statement, each a data-modifying CTE included when it has rows,
# with the expression the statement returns for it.
_TABLES = {
    "person": Person._meta.db_table,
    "distinct_id": PersonDistinctId._meta.db_table,
    "personless": PersonlessDistinctId._meta.db_table,
    "override": PersonOverride._meta.db_table,
}
# New persons (a uuid already taken is left out: a concurrent batch created that person).
_NEW_PERSONS_SQL = """
    INSERT INTO {person} (project_id, uuid, properties, is_identified, created_at, version)
    SELECT %(project)s, person.uuid, person.properties, person.is_identified, person.created_at, person.version
    FROM json_to_recordset(%(persons)s::json) AS person(
        uuid uuid, properties jsonb, is_identified boolean, created_at timestamptz, version bigint)
    ORDER BY person.uuid
    ON CONFLICT (project_id, uuid) DO NOTHING
    RETURNING id, uuid
""".format(**_TABLES)
# Distinct ids joining new or stored persons (an id already owned is left out).
_NEW_DISTINCT_IDS_SQL = """
    INSERT INTO {distinct_id} (project_id, person_id, distinct_id, version)
    SELECT %(project)s, COALESCE(owned.person_id, new_persons.id), owned.distinct_id, owned.version
    FROM json_to_recordset(%(distinct_ids)s::json)
        AS owned(distinct_id text, person_id bigint, person_uuid uuid, version bigint)
    LEFT JOIN new_persons ON new_persons.uuid = owned.person_uuid
    WHERE COALESCE(owned.person_id, new_persons.id) IS NOT NULL
    ORDER BY owned.distinct_id
    ON CONFLICT (project_id, distinct_id) DO NOTHING
    RETURNING 1
""".format(**_TABLES)
# Personless rows, in one statement sorted by id (two would let batches deadlock crosswise): the batch's new
# personless ids (a row found merged, the id having joined a person since the read, is returned) and the ids
# joining a person, written merged (returned, `inserted` saying whether the row is new).
_PERSONLESS_SQL = """
    INSERT INTO {personless} AS personless (project_id, distinct_id, is_merged, created_at)
    SELECT %(project)s, row.distinct_id, row.is_merged, %(now)s
    FROM json_to_recordset(%(personless)s::json) AS row(distinct_id text, is_merged boolean)
    ORDER BY row.distinct_id
    ON CONFLICT (project_id, distinct_id) DO UPDATE SET is_merged = TRUE
        WHERE personless.is_merged OR excluded.is_merged
    RETURNING distinct_id, xmax = 0 AS inserted
""".format(**_TABLES)
# Changed persons, each only while its version is the one read.
_UPDATED_PERSONS_SQL = """
    UPDATE {person} AS person SET properties = changed.properties, is_identified = changed.is_identified,
        created_at = changed.created_at, version = changed.version
    FROM json_to_recordset(%(changed)s::json) AS changed(
        id bigint, loaded_version bigint, properties jsonb, is_identified boolean, created_at timestamptz,
        version bigint)
    WHERE person.id = changed.id AND person.version = changed.loaded_version
    RETURNING 1
""".format(**_TABLES)
_NEW_OVERRIDES_SQL = """
    INSERT INTO {override} AS override (project_id, old_person_id, new_person_id, created_at)
    SELECT %(project)s, new.old_person_id, new.new_person_id, %(now)s
    FROM json_to_recordset(%(overrides)s::json) AS new(old_person_id uuid, new_person_id uuid)
    ORDER BY new.old_person_id
    ON CONFLICT (project_id, old_person_id) DO UPDATE
        SET new_person_id = excluded.new_person_id, created_at = excluded.created_at
    RETURNING 1
""".format(**_TABLES)
_WRITE_PARTS = {
    "new_persons": (_NEW_PERSONS_SQL, "(SELECT json_agg(json_build_array(id, uuid)) FROM new_persons)"),
    "new_distinct_ids": (_NEW_DISTINCT_IDS_SQL, "(SELECT count(*) FROM new_distinct_ids)"),
    "personless_rows": (_PERSONLESS_SQL, "(SELECT json_object_agg(distinct_id, inserted) FROM personless_rows)"),
    "updated_persons": (_UPDATED_PERSONS_SQL, "(SELECT count(*) FROM updated_persons)"),
    "new_overrides": (_NEW_OVERRIDES_SQL, "(SELECT count(*) FROM new_overrides)"),
}


def _person_json(person: _Person) -> dict:
    return {
        "properties": person.properties,
        "is_identified": person.is_identified,
        "created_at": person.created_at.isoformat(),
        "version": person.version,
    }


def _write_postgres(batch: _Batch, new_personless: list[str], changed: list[_Person]) -> None:
    params: dict = {"project": batch.project_id, "now": batch.now}
    parts: list[str] = []
    if batch.new_distinct_ids:
        parts += ["new_persons", "new_distinct_ids"]
        params["persons"] = json.dumps(
            [{"uuid": str(person.uuid), **_person_json(person)} for person in batch.new_persons]
        )
        distinct_ids = []
        for distinct_id, version in sorted(batch.new_distinct_ids.items()):
            owner = batch.owners[distinct_id].final()
            distinct_ids.append(
                {"distinct_id": distinct_id, "person_id": owner.pk, "person_uuid": str(owner.uuid), "version": version}
            )
        params["distinct_ids"] = json.dumps(distinct_ids)
    if new_personless or batch.merged_personless:
        parts.append("personless_rows")
        params["personless"] = json.dumps(
            [{"distinct_id": distinct_id, "is_merged": False} for distinct_id in new_personless]
            + [{"distinct_id": distinct_id, "is_merged": True} for distinct_id in batch.merged_personless]
        )
    if changed:
        parts.append("updated_persons")
        params["changed"] = json.dumps(
            [{"id": person.pk, "loaded_version": person.loaded_version, **_person_json(person)} for person in changed],
        )
    overrides = _final_overrides(batch)
    if overrides:
        parts.append("new_overrides")
        params["overrides"] = json.dumps(
            [{"old_person_id": str(old), "new_person_id": str(new)} for old, new in sorted(overrides.items())]
        )
    if not parts:
        return
    sql = "WITH " + ", ".join(f"{name} AS ({_WRITE_PARTS[name][0]})" for name in parts)
    sql += " SELECT " + ", ".join(_WRITE_PARTS[name][1] for name in parts)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        _last_result(cursor)
        results = dict(zip(parts, cursor.fetchone(), strict=True))
    _check_written(batch, results, new_personless, changed)


def _check_written(batch: _Batch, results: dict, new_personless: list[str], changed: list[_Person]) -> None:
    """Raise LostRace when a write found the rows it was computed from changed by a concurrent batch."""
    if "new_persons" in results:
        rows = results["new_persons"] or []
        pks = {uuid.UUID(row_uuid): pk for pk, row_uuid in (json.loads(rows) if isinstance(rows, str) else rows)}
        if len(pks) != len(batch.new_persons) or results["new_distinct_ids"] != len(batch.new_distinct_ids):
            raise LostRace("a person or distinct id of the batch was created concurrently")
        for person in batch.new_persons:
            person.pk = pks[person.uuid]
    if "personless_rows" in results:
        rows = results["personless_rows"] or {}
        written = json.loads(rows) if isinstance(rows, str) else rows
        # A new personless id found merged: it joined a person since the read (checked without the locks of a
        # replay only: a replay's read holds every id of the batch).
        if not batch.contended and any(not written.get(distinct_id, True) for distinct_id in new_personless):
            raise LostRace("a personless id of the batch joined a person concurrently")
        # An id of a merge event whose personless row appeared since the read (or was read but is new).
        checked = batch.merged_personless & batch.merging
        if {distinct_id for distinct_id in checked if written[distinct_id]} != checked - batch.known_personless:
            raise LostRace("a distinct id of a merge was seen personless concurrently")
    if results.get("updated_persons", 0) != len(changed):
        raise LostRace("a person of the batch was changed concurrently")


def _final_overrides(batch: _Batch) -> dict[uuid.UUID, uuid.UUID]:
    overrides = {old: person.final().uuid for old, person in batch.overrides.items()}
    return {old: new for old, new in overrides.items() if old != new}


def _write_orm(batch: _Batch, new_personless: list[str], changed: list[_Person]) -> None:
    """The same writes through the ORM (the embedded SQLite, whose writers are serialised: no race to check)."""
    project_id = batch.project_id
    if batch.new_persons:
        rows = Person.objects.bulk_create(
            Person(project_id=project_id, uuid=person.uuid, **_person_fields(person)) for person in batch.new_persons
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
    if batch.merged_personless:
        merged = sorted(batch.merged_personless)
        PersonlessDistinctId.objects.bulk_create(
            [
                PersonlessDistinctId(project_id=project_id, distinct_id=distinct_id, is_merged=True)
                for distinct_id in merged
            ],
            ignore_conflicts=True,
        )
        PersonlessDistinctId.objects.filter(project_id=project_id, distinct_id__in=merged, is_merged=False).update(
            is_merged=True
        )
    if changed:
        Person.objects.bulk_update(
            [Person(pk=person.pk, **_person_fields(person)) for person in changed],
            ["properties", "is_identified", "created_at", "version"],
        )
    overrides = _final_overrides(batch)
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


def _person_fields(person: _Person) -> dict:
    return {
        "properties": person.properties,
        "is_identified": person.is_identified,
        "created_at": person.created_at,
        "version": person.version,
    }


def _target_case(merged: list[_Person], column: str) -> Case:
    return Case(*(When(**{column: person.pk}, then=Value(person.final().pk)) for person in merged))


# PostgreSQL: the merged persons, each only while its version is the one read.
_DELETE_MERGED_SQL = f"""
    DELETE FROM {Person._meta.db_table} AS person
    USING json_to_recordset(%s::json) AS merged(id bigint, loaded_version bigint)
    WHERE person.id = merged.id AND person.version = merged.loaded_version
"""


def _write_merges(batch: _Batch) -> None:
    """Move the merged persons' distinct ids, cohort memberships and hash key overrides to their survivors (the
    survivor's own memberships and overrides win), point earlier overrides at the survivors, then delete the
    merged persons."""
    merged = sorted(batch.merged, key=lambda person: person.pk)
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
    merged_uuids = {person.uuid: person.final().uuid for person in merged}
    PersonOverride.objects.filter(project_id=batch.project_id, new_person_id__in=list(merged_uuids)).update(
        new_person_id=Case(*(When(new_person_id=old, then=Value(new)) for old, new in merged_uuids.items()))
    )
    # Nothing refers to the merged persons any more: one DELETE, without the collector's reads and cascades.
    if connection.vendor != "postgresql":
        merged_persons = Person.objects.filter(pk__in=merged_pks)
        merged_persons._raw_delete(merged_persons.db)
        return
    rows = json.dumps([{"id": person.pk, "loaded_version": person.loaded_version} for person in merged])
    with connection.cursor() as cursor:
        cursor.execute(_DELETE_MERGED_SQL, [rows])
        if cursor.rowcount != len(merged):
            raise LostRace("a merged person was changed concurrently")
