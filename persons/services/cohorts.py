"""Cohort members: static cohorts are lists of persons; dynamic ones are calculated by a Celery task from their
filters (person properties, other cohorts, and the behavioural `performed_event` leaf the experiment exposure
cohort uses), PostHog's bookkeeping kept: `is_calculating`, `count`, `last_calculation`, `errors_calculating`."""

import datetime as dt
import re
from collections.abc import Iterable, Mapping

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from experiments.metrics.filters import properties_sql
from experiments.metrics.query import person_join
from experiments.metrics.spec import parse_property_filters
from experiments.metrics.stores import event_store_dialect
from experiments_api.exceptions import DomainError, NotFoundError
from flags.evaluation import cohort_filter_id
from flags.models import Cohort
from persons.cohorts import BEHAVIORAL, person_matches_cohort_filters
from persons.models import CohortPerson, Person

CALCULATE_TASK = "persons.tasks.calculate_cohort"
STALE_AFTER = dt.timedelta(minutes=15)
MAX_ERRORS = 20
SUPPORTED_BEHAVIOURS = ("performed_event",)
UNSUPPORTED_BEHAVIOUR = "Cohort filter '{value}' is not supported: only performed_event can be calculated."
NOT_STATIC = "Can only add users to static cohorts"
NO_VALID_USERS = "No valid users to add to cohort"
NOT_A_MEMBER = "Person is not part of the cohort"
MAX_STATIC_PERSONS = 1000
_RELATIVE_DATE = re.compile(r"^-(\d+)([hdwmy])$")
_UNIT_DAYS = {"h": 1 / 24, "d": 1, "w": 7, "m": 30, "y": 365}


def cohort_calculation_enqueue(cohort: Cohort) -> None:
    """Mark a dynamic cohort as calculating and queue its calculation once the transaction commits."""
    if cohort.is_static or cohort.deleted:
        return
    Cohort.objects.filter(pk=cohort.pk).update(is_calculating=True)
    cohort.is_calculating = True
    cohort_id = cohort.pk
    transaction.on_commit(lambda: current_app.tasks[CALCULATE_TASK].delay(cohort_id))


def stale_cohort_ids(*, now: dt.datetime | None = None) -> list[int]:
    """Dynamic, live cohorts last calculated more than 15 minutes ago (or never) that have not failed too often."""
    now = now or timezone.now()
    return list(
        Cohort.objects.filter(is_static=False, deleted=False, errors_calculating__lte=MAX_ERRORS)
        .filter(Q(last_calculation__isnull=True) | Q(last_calculation__lt=now - STALE_AFTER))
        .values_list("pk", flat=True)
    )


def _since(leaf: Mapping, now: dt.datetime) -> dt.datetime | None:
    """`explicit_datetime` (relative `-30d` or absolute) wins over `time_value`/`time_interval`."""
    explicit = leaf.get("explicit_datetime")
    if isinstance(explicit, str):
        if match := _RELATIVE_DATE.match(explicit):
            return now - dt.timedelta(days=int(match.group(1)) * _UNIT_DAYS[match.group(2)])
        try:
            parsed = dt.datetime.fromisoformat(explicit)
        except ValueError:
            raise DomainError(f"Invalid explicit_datetime '{explicit}'.", attr="filters") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    value, interval = leaf.get("time_value"), leaf.get("time_interval")
    if isinstance(value, int) and interval and interval[0] in _UNIT_DAYS:
        return now - dt.timedelta(days=value * _UNIT_DAYS[interval[0]])
    return None


def _performers(project_id: int, leaf: Mapping, now: dt.datetime) -> set:
    """Person uuids (resolved through overrides) that performed the leaf's event since its start."""
    if leaf.get("value") not in SUPPORTED_BEHAVIOURS or leaf.get("event_type", "events") != "events":
        raise DomainError(UNSUPPORTED_BEHAVIOUR.format(value=leaf.get("value")), attr="filters")
    dialect = event_store_dialect()
    params = dialect.params
    filters = parse_property_filters(leaf.get("event_filters") or [], "event_filters")
    join, person = person_join(dialect, "e", with_person_row=any(f.type != "event" for f in filters))
    conditions = [f"e.project_id = {params(project_id)}", f"e.event = {params(leaf.get('key'))}"]
    since = _since(leaf, now)
    if since is not None:
        conditions.append(f"e.timestamp >= {params.timestamp(since)}")
    conditions.extend(properties_sql(dialect, "e", filters))
    sql = f"SELECT DISTINCT {person} FROM {dialect.events_table} e {join} WHERE " + " AND ".join(conditions)
    return {Person._meta.get_field("uuid").to_python(row[0]) for row in dialect.rows(sql)}


def _behavioural_leaves(node) -> Iterable[Mapping]:
    if isinstance(node, Mapping):
        if node.get("type") in ("AND", "OR"):
            for child in node.get("values") or []:
                yield from _behavioural_leaves(child)
        elif node.get("type") == BEHAVIORAL:
            yield node


def cohort_members(cohort: Cohort, *, now: dt.datetime | None = None) -> set[int]:
    """The pks of the persons matching a dynamic cohort's filters now; referenced cohorts count by their stored
    members."""
    now = now or timezone.now()
    tree = (cohort.filters or {}).get("properties")
    leaves = list(_behavioural_leaves(tree))
    performed = {id(leaf): _performers(cohort.project_id, leaf, now) for leaf in leaves}
    referenced = _referenced(tree)
    stored = {
        cohort_id: set(CohortPerson.objects.filter(cohort_id=cohort_id).values_list("person_id", flat=True))
        for cohort_id in referenced
        if cohort_id != cohort.pk
    }
    members = set()
    for pk, uuid, properties in (
        Person.objects.filter(project_id=cohort.project_id).values_list("pk", "uuid", "properties").iterator()
    ):
        if _matches(tree, pk, uuid, properties or {}, performed, stored):
            members.add(pk)
    return members


def _referenced(node) -> set[int]:
    if not isinstance(node, Mapping):
        return set()
    if node.get("type") in ("AND", "OR"):
        return {cohort_id for child in node.get("values") or [] for cohort_id in _referenced(child)}
    cohort_id = cohort_filter_id(node)
    return set() if cohort_id is None else {cohort_id}


def _matches(tree, pk, uuid, properties, performed, stored) -> bool:
    def with_behaviour(node) -> bool:
        if node.get("type") in ("AND", "OR"):
            children = [child for child in node.get("values") or [] if isinstance(child, Mapping)]
            if not children:
                return False
            results = (with_behaviour(child) for child in children)
            return all(results) if node["type"] == "AND" else any(results)
        if node.get("type") == BEHAVIORAL:
            return (uuid in performed[id(node)]) != bool(node.get("negation"))
        return person_matches_cohort_filters(
            {"properties": {"type": "AND", "values": [node]}},
            properties,
            lambda other: pk in stored.get(other, set()),
        )

    return isinstance(tree, Mapping) and with_behaviour(tree)


def cohort_calculate(*, cohort_id: int) -> None:
    """Recalculate a dynamic cohort's members; a failure counts in `errors_calculating` (the periodic job backs
    off after MAX_ERRORS)."""
    cohort = Cohort.objects.filter(pk=cohort_id, is_static=False, deleted=False).first()
    if cohort is None:
        return
    try:
        members = cohort_members(cohort)
    except DomainError:
        Cohort.objects.filter(pk=cohort_id).update(
            is_calculating=False, errors_calculating=cohort.errors_calculating + 1
        )
        return
    with transaction.atomic():
        Cohort.objects.select_for_update().filter(pk=cohort_id).first()
        CohortPerson.objects.filter(cohort_id=cohort_id).exclude(person_id__in=members).delete()
        CohortPerson.objects.bulk_create(
            [CohortPerson(cohort_id=cohort_id, person_id=pk) for pk in sorted(members)], ignore_conflicts=True
        )
        Cohort.objects.filter(pk=cohort_id).update(
            is_calculating=False, count=len(members), last_calculation=timezone.now(), errors_calculating=0
        )


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
