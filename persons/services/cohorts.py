"""Cohort members: static cohorts are lists of persons (from person uuids, a CSV upload, or a copy of a definition);
dynamic ones are calculated by a Celery task from their filters (person properties, other cohorts, and the
behavioural leaves of persons/behaviours.py), PostHog's bookkeeping kept: `is_calculating`, `count`,
`last_calculation`, `errors_calculating` and `last_error_at`, with which the periodic job backs off a cohort that
keeps failing."""

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterable, Mapping

from celery import current_app
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from experiments_api.exceptions import DomainError, NotFoundError
from experiments_api.queue import enqueue_on_commit
from flags.evaluation import cohort_filter_id
from flags.models import Cohort
from persons.behaviours import BehaviourProblem, behavioural_leaves, is_behavioural, parse_behaviour
from persons.cohort_csv import DISTINCT_ID, EMAIL, PERSON_ID, CohortCSV
from persons.cohorts import person_matches_cohort_filters
from persons.models import CohortPerson, Person, PersonDistinctId
from persons.services.behaviours import behaviour_performers

logger = logging.getLogger(__name__)

CALCULATE_TASK = "persons.tasks.calculate_cohort"
STALE_AFTER = dt.timedelta(minutes=15)
MAX_ERRORS = 20
# After its n-th failure in a row a cohort waits 30 min × 2^n before the periodic job calculates it again.
ERROR_BACKOFF = dt.timedelta(minutes=30)
# A cohort still calculating this long after its calculation was queued lost its task (the task's hard limit is 30
# minutes): the periodic job counts an error and lets it be queued again.
LOST_AFTER = dt.timedelta(hours=1)
NOT_STATIC = "Can only add users to static cohorts"
NO_VALID_USERS = "No valid users to add to cohort"
NOT_A_MEMBER = "Person is not part of the cohort"
CSV_TASK = "persons.tasks.add_static_cohort_persons"
# Ids per INSERT … SELECT when adding a CSV upload's persons (SQLite reads them from one JSON parameter).
CSV_CHUNK = 50_000


def cohort_calculation_enqueue(cohort: Cohort) -> None:
    """Mark a dynamic cohort as calculating and queue its calculation once the transaction commits."""
    if cohort.is_static or cohort.deleted:
        return
    now = timezone.now()
    Cohort.objects.filter(pk=cohort.pk).update(is_calculating=True, calculation_queued_at=now)
    cohort.is_calculating, cohort.calculation_queued_at = True, now
    cohort_id = cohort.pk
    transaction.on_commit(lambda: current_app.tasks[CALCULATE_TASK].delay(cohort_id))


def _backing_off(errors: int, last_error_at: dt.datetime | None, now: dt.datetime) -> bool:
    return last_error_at is not None and now < last_error_at + ERROR_BACKOFF * 2**errors


def stale_cohort_ids(*, now: dt.datetime | None = None) -> list[int]:
    """Dynamic, live cohorts not calculating, last calculated more than 15 minutes ago (or never), that have not
    failed more than MAX_ERRORS times in a row and whose backoff after the last failure is over; oldest first.

    The backoff is checked on the stale rows in Python: 2^errors times a duration has no portable SQL (SQLite)."""
    now = now or timezone.now()
    rows = (
        Cohort.objects.filter(is_static=False, deleted=False, is_calculating=False, errors_calculating__lte=MAX_ERRORS)
        .filter(Q(last_calculation__isnull=True) | Q(last_calculation__lt=now - STALE_AFTER))
        .order_by(F("last_calculation").asc(nulls_first=True), "pk")
        .values_list("pk", "errors_calculating", "last_error_at")
    )
    return [pk for pk, errors, last_error_at in rows if not _backing_off(errors, last_error_at, now)]


def lost_calculations_reset(*, now: dt.datetime | None = None) -> list[int]:
    """Cohorts still `is_calculating` an hour after their calculation (or a static one's CSV upload) was queued:
    its task was lost, or the row predates the queue time. They stop calculating, with one more error (as
    PostHog's reset of stuck cohorts); a dynamic one is then queued again after the backoff."""
    now = now or timezone.now()
    lost = Cohort.objects.filter(deleted=False, is_calculating=True).filter(
        Q(calculation_queued_at__isnull=True) | Q(calculation_queued_at__lt=now - LOST_AFTER)
    )
    ids = list(lost.values_list("pk", flat=True))
    Cohort.objects.filter(pk__in=ids, is_calculating=True).update(
        is_calculating=False, errors_calculating=F("errors_calculating") + 1, last_error_at=now
    )
    return ids


def stale_cohorts_claim(*, now: dt.datetime | None = None) -> list[int]:
    """What the periodic job calculates: lost calculations are reset first, then every stale cohort is marked
    calculating (so the next run does not queue it again while it runs) and returned."""
    now = now or timezone.now()
    lost_calculations_reset(now=now)
    ids = stale_cohort_ids(now=now)
    Cohort.objects.filter(pk__in=ids, is_calculating=False).update(is_calculating=True, calculation_queued_at=now)
    return ids


def _behaviours(tree) -> dict[int, object]:
    """The parsed behavioural leaves of the tree, by the leaf's id(); a stored leaf that no longer parses is a
    calculation error."""
    behaviours = {}
    for leaf, path in behavioural_leaves(tree):
        try:
            behaviours[id(leaf)] = parse_behaviour(leaf, path)
        except BehaviourProblem as problem:
            raise DomainError(str(problem), attr="filters") from None
    return behaviours


def cohort_members(cohort: Cohort, *, now: dt.datetime | None = None) -> set[int]:
    """The pks of the persons matching a dynamic cohort's filters now; referenced cohorts count by their stored
    members."""
    now = now or timezone.now()
    tree = (cohort.filters or {}).get("properties")
    performed = {
        leaf_id: behaviour_performers(project_id=cohort.project_id, behaviour=behaviour, now=now)
        for leaf_id, behaviour in _behaviours(tree).items()
    }
    stored = {
        cohort_id: set(CohortPerson.objects.filter(cohort_id=cohort_id).values_list("person_id", flat=True))
        for cohort_id in _referenced(tree)
        if cohort_id != cohort.pk
    }
    members = set()
    for pk, person_uuid, properties in (
        Person.objects.filter(project_id=cohort.project_id).values_list("pk", "uuid", "properties").iterator()
    ):
        if _matches(tree, pk, person_uuid, properties or {}, performed, stored):
            members.add(pk)
    return members


def _referenced(node) -> set[int]:
    if not isinstance(node, Mapping):
        return set()
    if node.get("type") in ("AND", "OR"):
        return {cohort_id for child in node.get("values") or [] for cohort_id in _referenced(child)}
    cohort_id = cohort_filter_id(node)
    return set() if cohort_id is None else {cohort_id}


def _matches(tree, pk, person_uuid, properties, performed, stored) -> bool:
    def with_behaviour(node) -> bool:
        if node.get("type") in ("AND", "OR"):
            children = [child for child in node.get("values") or [] if isinstance(child, Mapping)]
            if not children:
                return False
            results = (with_behaviour(child) for child in children)
            return all(results) if node["type"] == "AND" else any(results)
        if is_behavioural(node):
            return (person_uuid in performed[id(node)]) != bool(node.get("negation"))
        return person_matches_cohort_filters(
            {"properties": {"type": "AND", "values": [node]}},
            properties,
            lambda other: pk in stored.get(other, set()),
        )

    return isinstance(tree, Mapping) and with_behaviour(tree)


def _calculation_failed(cohort_id: int) -> None:
    """Count a failed calculation; best effort when the database itself is what failed."""
    try:
        Cohort.objects.filter(pk=cohort_id).update(
            is_calculating=False, errors_calculating=F("errors_calculating") + 1, last_error_at=timezone.now()
        )
    except DatabaseError:
        logger.exception("Could not record the failed calculation of cohort %s", cohort_id)


def cohort_calculate(*, cohort_id: int) -> None:
    """Recalculate a dynamic cohort's members. Success sets `count` and `last_calculation` and clears the errors; a
    failure adds one to `errors_calculating` and sets `last_error_at` (the periodic job then backs off). A database
    error is raised again after that, for the task's retries; any other error is logged."""
    cohort = Cohort.objects.filter(pk=cohort_id, is_static=False, deleted=False).first()
    if cohort is None:
        return
    try:
        members = cohort_members(cohort)
        with transaction.atomic():
            Cohort.objects.select_for_update().filter(pk=cohort_id).first()
            CohortPerson.objects.filter(cohort_id=cohort_id).exclude(person_id__in=members).delete()
            CohortPerson.objects.bulk_create(
                [CohortPerson(cohort_id=cohort_id, person_id=pk) for pk in sorted(members)], ignore_conflicts=True
            )
            Cohort.objects.filter(pk=cohort_id).update(
                is_calculating=False,
                count=len(members),
                last_calculation=timezone.now(),
                errors_calculating=0,
                last_error_at=None,
            )
    except DomainError as error:
        logger.warning("Cohort %s cannot be calculated: %s", cohort_id, error.message)
        _calculation_failed(cohort_id)
    except DatabaseError:
        _calculation_failed(cohort_id)
        raise
    except Exception:
        logger.exception("The calculation of cohort %s failed", cohort_id)
        _calculation_failed(cohort_id)


def static_cohort_persons_add(*, cohort: Cohort, person_uuids: list, require_valid: bool = True) -> int:
    """Add the project's persons with these uuids (unknown ones ignored) to a static cohort; returns how many
    persons it has. With `require_valid`, none known is a 400."""
    if not cohort.is_static:
        raise DomainError(NOT_STATIC, attr="person_ids")
    persons = list(
        Person.objects.filter(project_id=cohort.project_id, uuid__in=person_uuids).values_list("pk", flat=True)
    )
    if not persons and require_valid:
        raise DomainError(NO_VALID_USERS, attr="person_ids")
    with transaction.atomic():
        CohortPerson.objects.bulk_create(
            [CohortPerson(cohort=cohort, person_id=pk) for pk in persons], ignore_conflicts=True
        )
        count = CohortPerson.objects.filter(cohort=cohort).count()
        Cohort.objects.filter(pk=cohort.pk).update(count=count, last_calculation=timezone.now())
    return count


def _chunks(values: list, size: int) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def static_cohort_csv_enqueue(*, cohort: Cohort, upload: CohortCSV) -> None:
    """Queue the persons of a parsed CSV upload for a static cohort, as PostHog does: the cohort is calculating
    until the task has added them (to its members, none removed). A broker that cannot be reached is a 503 and the
    transaction rolls back."""
    if not cohort.is_static:
        raise DomainError(NOT_STATIC, attr="csv")
    now = timezone.now()
    Cohort.objects.filter(pk=cohort.pk).update(is_calculating=True, calculation_queued_at=now)
    cohort.is_calculating, cohort.calculation_queued_at = True, now
    enqueue_on_commit(CSV_TASK, cohort.pk, upload.id_type, list(dict.fromkeys(upload.ids)))


def _values_in(column: str) -> str:
    """`column` is one of a list parameter: PostgreSQL takes an array, SQLite a JSON array through json_each."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)"
    return f"{column} IN (SELECT value FROM json_each(%s))"


def _members_insert_sql(id_type: str) -> str:
    """INSERT … SELECT of the project's persons a chunk of ids names (parameters: cohort, project, ids)."""
    if id_type == DISTINCT_ID:
        table, person, match = PersonDistinctId._meta.db_table, "person_id", _values_in("distinct_id")
    else:
        email = "properties ->> 'email'" if connection.vendor == "postgresql" else "json_extract(properties, '$.email')"
        table, person, match = Person._meta.db_table, "id", _values_in("uuid" if id_type == PERSON_ID else email)
    return (
        f"INSERT INTO {CohortPerson._meta.db_table} (cohort_id, person_id, version) "
        f"SELECT DISTINCT %s, {person}, 0 FROM {table} WHERE project_id = %s AND {match} "
        "ON CONFLICT (cohort_id, person_id) DO NOTHING"
    )


def _ids_param(id_type: str, ids: list[str]):
    """The ids as the list parameter: uuids that parse (others name nobody), as the column stores them."""
    if id_type == PERSON_ID:
        field = Person._meta.get_field("uuid")
        values = []
        for value in ids:
            try:
                values.append(field.get_db_prep_value(uuid.UUID(value), connection))
            except ValueError:
                continue
        ids = values
    return ids if connection.vendor == "postgresql" else json.dumps(ids)


def static_cohort_persons_add_from_csv(*, cohort_id: int, id_type: str, ids: list[str]) -> None:
    """Add the persons a CSV upload names to a static cohort: by uuid, by distinct id (its current person) or by
    the `email` property (exact); unknown ones are ignored, as PostHog does. One INSERT … SELECT per chunk of ids,
    in one transaction, so a retry after a failure adds the same persons. A cohort deleted or made dynamic since the
    upload is left alone; a failure counts in `errors_calculating` (a database error is raised again, for the
    task's retries)."""
    if id_type not in (PERSON_ID, DISTINCT_ID, EMAIL):
        raise ValueError(f"Unknown CSV id type {id_type!r}")
    cohort = Cohort.objects.filter(pk=cohort_id, is_static=True, deleted=False).first()
    if cohort is None:
        return
    sql = _members_insert_sql(id_type)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for chunk in _chunks(ids, CSV_CHUNK):
                cursor.execute(sql, [cohort_id, cohort.project_id, _ids_param(id_type, chunk)])
            Cohort.objects.filter(pk=cohort_id).update(
                count=CohortPerson.objects.filter(cohort_id=cohort_id).count(),
                last_calculation=timezone.now(),
                is_calculating=False,
                errors_calculating=0,
                last_error_at=None,
            )
    except DatabaseError:
        _calculation_failed(cohort_id)
        raise


def static_cohort_person_remove(*, cohort: Cohort, person_uuid) -> None:
    if not cohort.is_static:
        raise DomainError(NOT_STATIC, attr="person_id")
    deleted, _ = CohortPerson.objects.filter(cohort=cohort, person__uuid=person_uuid).delete()
    if not deleted:
        raise NotFoundError(NOT_A_MEMBER)
    Cohort.objects.filter(pk=cohort.pk).update(count=CohortPerson.objects.filter(cohort=cohort).count())


def static_cohort_fill(*, cohort: Cohort) -> None:
    """Make a static cohort's members the persons its filters match now (a static copy of a definition)."""
    members = cohort_members(cohort)
    CohortPerson.objects.bulk_create(
        [CohortPerson(cohort=cohort, person_id=pk) for pk in sorted(members)], ignore_conflicts=True
    )
    Cohort.objects.filter(pk=cohort.pk).update(count=len(members), last_calculation=timezone.now())
    cohort.count = len(members)
