"""Business rules for feature flags and cohorts: creates and updates from validated field values, key and filter
rules as domain errors, soft delete, holdout groups."""

import re
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from experiments_api.exceptions import ConflictError, DomainError
from experiments_api.models import Project, User
from experiments_api.updates import model_update
from flags import messages
from flags.cache import project_flags_changed
from flags.models import FLAG_KEY_PATTERN, Cohort, FeatureFlag
from flags.selectors import (
    active_flag_using_cohort,
    behavioral_cohort_in_flag_filters,
    running_experiment_using_flag,
)
from flags.validators import validate_flag_filters
from persons.cohort_csv import CohortCSV
from persons.cohorts import cohort_has_behavioral_filters
from persons.services.cohorts import (
    cohort_calculation_enqueue,
    static_cohort_csv_enqueue,
    static_cohort_persons_add,
)

UNIQUE_LIVE_FLAG_KEY_CONSTRAINT = "unique_live_flag_key_per_project"


def _duplicate_key_error() -> DomainError:
    return DomainError(messages.DUPLICATE_FLAG_KEY, code="unique", attr="key")


@contextmanager
def _duplicate_key_refused() -> Iterator[None]:
    """A concurrent writer can take the key between the check and the write; report it as the check does."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as error:
        constraint = getattr(getattr(error.__cause__, "diag", None), "constraint_name", None)
        if constraint == UNIQUE_LIVE_FLAG_KEY_CONSTRAINT:
            raise _duplicate_key_error() from error
        raise


def _check_key(*, project: Project, key: object, flag: FeatureFlag | None = None) -> None:
    """A key is letters, digits, `_` and `-`, and no other live flag of the project has it."""
    if not isinstance(key, str) or not re.fullmatch(FLAG_KEY_PATTERN, key):
        raise DomainError(messages.INVALID_FLAG_KEY, code="invalid_key", attr="key")
    clashes = FeatureFlag.objects.alive().filter(project=project, key=key)
    if flag is not None:
        clashes = clashes.exclude(pk=flag.pk)
    if clashes.exists():
        raise _duplicate_key_error()


def _check_filters(*, project: Project, filters: object) -> dict:
    """Well-formed filters (flags.validators) whose cohorts can be evaluated without events."""
    filters = validate_flag_filters(filters)
    cohort = behavioral_cohort_in_flag_filters(project_id=project.pk, filters=filters)
    if cohort is not None:
        raise DomainError(
            messages.BEHAVIORAL_COHORT_IN_FLAG.format(name=cohort.name), code="behavioral_cohort_found", attr="filters"
        )
    return filters


def feature_flag_create(*, project: Project, user: User | None, fields: dict) -> FeatureFlag:
    """Create a flag from its field values (the flag serializer's validated data, or an experiment's flag).

    Raises DomainError on `key` (code `invalid_key`, or `unique` for a key a live flag of the project already has,
    also when a concurrent request takes it first) and on `filters`.
    """
    _check_key(project=project, key=fields.get("key"))
    if "filters" in fields:
        fields = {**fields, "filters": _check_filters(project=project, filters=fields["filters"])}
    with _duplicate_key_refused():
        flag = FeatureFlag.objects.create(project=project, created_by=user, last_modified_by=user, **fields)
        project_flags_changed(project.pk)
    return flag


def feature_flag_get_or_create(*, project: Project, user: User | None, fields: dict) -> tuple[FeatureFlag, bool]:
    """The project's live flag with `fields["key"]`, or a new one created from `fields`; returns (flag, created).

    Concurrent callers with the same new key end up with the one flag that won the unique constraint, as if they
    had come one at a time: a loser's insert is rolled back to its savepoint and the winner's flag is read instead.
    """
    existing = FeatureFlag.objects.alive().filter(project=project, key=fields["key"]).first()
    if existing is not None:
        return existing, False
    try:
        return feature_flag_create(project=project, user=user, fields=fields), True
    except DomainError as error:
        if error.code != "unique":
            raise
    # Taken by a concurrent writer since the read above; under READ COMMITTED this read sees its flag.
    existing = FeatureFlag.objects.alive().filter(project=project, key=fields["key"]).first()
    if existing is None:
        raise ConflictError(messages.FLAG_KEY_TAKEN_CONCURRENTLY, attr="key")
    return existing, False


@transaction.atomic
def feature_flag_update(
    *, flag: FeatureFlag, user: User | None, changes: dict, expected_version: int | None = None
) -> FeatureFlag:
    """Apply field `changes` to the flag and increment `version`.

    `deleted: true` soft-deletes the flag, refused (DomainError, attr `deleted`) while a running experiment
    uses it; a changed key, or a restored flag, must still be unique. The flag row is locked, so concurrent
    updates apply one after the other. With `expected_version`, a flag changed since the caller read it is
    refused with ConflictError (409) instead of being overwritten.
    """
    flag = FeatureFlag.objects.select_for_update(of=("self",)).select_related("project").get(pk=flag.pk)
    if expected_version is not None and flag.version != expected_version:
        raise ConflictError(messages.FLAG_VERSION_CONFLICT.format(current=flag.version, expected=expected_version))
    changes = dict(changes)
    if not changes.get("deleted", flag.deleted) and ("key" in changes or "deleted" in changes):
        _check_key(project=flag.project, key=changes.get("key", flag.key), flag=flag)
    if "filters" in changes:
        changes["filters"] = _check_filters(project=flag.project, filters=changes["filters"])
    if changes.get("deleted") and not flag.deleted:
        running = running_experiment_using_flag(flag)
        if running is not None:
            raise DomainError(
                messages.FLAG_USED_BY_RUNNING_EXPERIMENT.format(name=running.name, id=running.id), attr="deleted"
            )
    for field, value in changes.items():
        setattr(flag, field, value)
    flag.version += 1
    flag.last_modified_by = user
    with _duplicate_key_refused():
        flag.save()
    project_flags_changed(flag.project_id)
    return flag


@transaction.atomic
def feature_flags_holdout_groups_set(
    *, flags: QuerySet[FeatureFlag], holdout_groups: list[dict] | None, user: User | None
) -> None:
    """Write a holdout's groups (or None to clear them) into `filters.holdout_groups` of each flag."""
    project_ids = set()
    for flag in FeatureFlag.objects.select_for_update().filter(pk__in=flags.values("pk")).order_by("pk"):
        flag.filters = {**flag.filters, "holdout_groups": holdout_groups}
        flag.version += 1
        flag.last_modified_by = user
        flag.save(update_fields=["filters", "version", "last_modified_by", "updated_at"])
        project_ids.add(flag.project_id)
    for project_id in project_ids:
        project_flags_changed(project_id)


def _check_no_events_for_flags(*, cohort: Cohort, filters: dict) -> None:
    """New filters on events (directly or through a referenced cohort) are refused while an active flag uses the
    cohort, directly or through another cohort: flags cannot be evaluated on events."""
    cohorts = {other.pk: other.filters for other in Cohort.objects.filter(project_id=cohort.project_id)}
    if not cohort_has_behavioral_filters(filters, lambda cohort_id: cohorts.get(cohort_id)):
        return
    if active_flag_using_cohort(cohort=cohort) is not None:
        raise DomainError(messages.BEHAVIORAL_FILTERS_IN_FLAG_COHORT, code="behavioral_cohort_found", attr="filters")


def _static_persons_add(cohort: Cohort, person_ids: list | None, upload: CohortCSV | None) -> None:
    """The persons a static cohort's write names: uuids (`_create_static_person_ids`, added now) and a CSV upload
    (queued: the cohort is calculating until they are added)."""
    if not cohort.is_static:
        return
    if person_ids:
        static_cohort_persons_add(cohort=cohort, person_uuids=person_ids, require_valid=False)
        cohort.refresh_from_db(fields=["count", "last_calculation"])
    if upload:
        static_cohort_csv_enqueue(cohort=cohort, upload=upload)


@transaction.atomic
def cohort_create(*, project: Project, user: User | None, fields: dict) -> Cohort:
    """Create a cohort from its field values: a static one gets the persons of `_create_static_person_ids` and,
    once the transaction commits, of a parsed `csv` upload (unknown ids ignored); a dynamic one is queued for
    calculation."""
    fields = dict(fields)
    person_ids = fields.pop("_create_static_person_ids", None)
    upload = fields.pop("csv", None)
    cohort = Cohort.objects.create(project=project, created_by=user, **fields)
    _static_persons_add(cohort, person_ids, upload)
    cohort_calculation_enqueue(cohort)
    return cohort


@transaction.atomic
def cohort_update(*, cohort: Cohort, changes: dict) -> Cohort:
    """Apply field `changes`; `deleted: true` soft-deletes the cohort, new filters queue a calculation. A static
    cohort gains the persons of `_create_static_person_ids` and of a `csv` upload (its members are kept)."""
    changes = dict(changes)
    person_ids = changes.pop("_create_static_person_ids", None)
    upload = changes.pop("csv", None)
    if "filters" in changes and not changes.get("is_static", cohort.is_static):
        _check_no_events_for_flags(cohort=cohort, filters=changes["filters"])
    model_update(instance=cohort, changes=changes)
    _static_persons_add(cohort, person_ids, upload)
    if "filters" in changes or "deleted" in changes:
        cohort_calculation_enqueue(cohort)
    return cohort
