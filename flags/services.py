"""Business rules for feature flags and cohorts: validated creates and updates, soft delete, holdout groups."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError

from experiments_api.exceptions import ConflictError, DomainError
from experiments_api.models import Project, User
from flags import messages
from flags.cache import project_flags_changed
from flags.models import Cohort, FeatureFlag
from flags.selectors import running_experiment_using_flag
from flags.serializers import CohortSerializer, FeatureFlagSerializer, duplicate_flag_key_error
from persons.services.cohorts import cohort_calculation_enqueue, static_cohort_persons_add

UNIQUE_LIVE_FLAG_KEY_CONSTRAINT = "unique_live_flag_key_per_project"


@contextmanager
def _duplicate_key_refused() -> Iterator[None]:
    """A concurrent writer can take the key between validation and the write; report it like validation does."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as error:
        constraint = getattr(getattr(error.__cause__, "diag", None), "constraint_name", None)
        if constraint == UNIQUE_LIVE_FLAG_KEY_CONSTRAINT:
            raise duplicate_flag_key_error() from error
        raise


def feature_flag_create(*, project: Project, user: User | None, data: dict) -> FeatureFlag:
    """Validate `data` as FeatureFlagSerializer input and create the flag.

    Raises DRF ValidationError named after the flag's fields (e.g. attr `key`, code `unique` for a key that a
    live flag of the project already has, also when a concurrent request takes it first).
    """
    serializer = FeatureFlagSerializer(data=data, context={"project": project})
    serializer.is_valid(raise_exception=True)
    with _duplicate_key_refused():
        flag = FeatureFlag.objects.create(
            project=project, created_by=user, last_modified_by=user, **serializer.validated_data
        )
        project_flags_changed(project.pk)
    return flag


def feature_flag_get_or_create(*, project: Project, user: User | None, data: dict) -> tuple[FeatureFlag, bool]:
    """The project's live flag with `data["key"]`, or a new one created from `data`; returns (flag, created).

    Concurrent callers with the same new key end up with the one flag that won the unique constraint, as if they
    had come one at a time: a loser's insert is rolled back to its savepoint and the winner's flag is read instead.
    """
    existing = FeatureFlag.objects.alive().filter(project=project, key=data["key"]).first()
    if existing is not None:
        return existing, False
    try:
        return feature_flag_create(project=project, user=user, data=data), True
    except ValidationError as error:
        codes = error.get_codes()
        if not (isinstance(codes, dict) and "unique" in codes.get("key", [])):
            raise
    # Taken by a concurrent writer since the read above; under READ COMMITTED this read sees its flag.
    existing = FeatureFlag.objects.alive().filter(project=project, key=data["key"]).first()
    if existing is None:
        raise ConflictError(messages.FLAG_KEY_TAKEN_CONCURRENTLY, attr="key")
    return existing, False


@transaction.atomic
def feature_flag_update(
    *, flag: FeatureFlag, user: User | None, data: dict, partial: bool = True, expected_version: int | None = None
) -> FeatureFlag:
    """Validate `data` against the flag, apply it and increment `version`.

    `deleted: true` soft-deletes the flag, refused (DomainError, attr `deleted`) while a running experiment
    uses it. The flag row is locked, so concurrent updates apply one after the other. With `expected_version`,
    a flag changed since the caller read it is refused with ConflictError (409) instead of being overwritten.
    """
    flag = FeatureFlag.objects.select_for_update(of=("self",)).select_related("project").get(pk=flag.pk)
    if expected_version is not None and flag.version != expected_version:
        raise ConflictError(messages.FLAG_VERSION_CONFLICT.format(current=flag.version, expected=expected_version))
    serializer = FeatureFlagSerializer(flag, data=data, partial=partial, context={"project": flag.project})
    serializer.is_valid(raise_exception=True)
    changes = serializer.validated_data
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


@transaction.atomic
def cohort_create(*, project: Project, user: User | None, data: dict) -> Cohort:
    """Validate `data` as CohortSerializer input and create the cohort: a static one gets the persons of
    `_create_static_person_ids` (unknown uuids ignored); a dynamic one is queued for calculation."""
    serializer = CohortSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    fields = dict(serializer.validated_data)
    person_ids = fields.pop("_create_static_person_ids", None)
    cohort = Cohort.objects.create(project=project, created_by=user, **fields)
    if cohort.is_static and person_ids:
        static_cohort_persons_add(cohort=cohort, person_uuids=person_ids, require_valid=False)
    cohort_calculation_enqueue(cohort)
    return cohort


def cohort_update(*, cohort: Cohort, data: dict, partial: bool = True) -> Cohort:
    """Validate `data` against the cohort and apply it; `deleted: true` soft-deletes it."""
    serializer = CohortSerializer(cohort, data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    fields = dict(serializer.validated_data)
    person_ids = fields.pop("_create_static_person_ids", None)
    with transaction.atomic():
        for field, value in fields.items():
            setattr(cohort, field, value)
        cohort.save()
        if cohort.is_static and person_ids:
            static_cohort_persons_add(cohort=cohort, person_uuids=person_ids, require_valid=False)
        if "filters" in fields or "deleted" in fields:
            cohort_calculation_enqueue(cohort)
    return cohort
