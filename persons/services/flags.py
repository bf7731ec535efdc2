"""What flag evaluation needs of the stored person: properties (merged with the ones the SDK sent, which win),
the cohorts it belongs to, and experience-continuity hash keys (PostHog's FeatureFlagHashKeyOverride)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from flags.evaluation import cohort_filter_id, holdout_groups
from flags.models import Cohort
from persons.cohorts import person_matches_cohort_filters
from persons.models import CohortPerson, FeatureFlagHashKeyOverride, Person, PersonDistinctId

MAX_COHORT_DEPTH = 20


@dataclass(frozen=True)
class FlagPersonContext:
    properties: dict
    cohort_ids: frozenset[int] = frozenset()
    # flag key → the hash key the flag is bucketed on instead of the distinct id.
    hash_keys: dict[str, str] = field(default_factory=dict)


def _referenced_cohorts(flags: Sequence[Mapping]) -> set[int]:
    ids = set()
    for flag in flags:
        filters = flag.get("filters") or {}
        for group in [*(filters.get("groups") or []), *(filters.get("holdout_groups") or [])]:
            for prop in group.get("properties") or []:
                if (cohort_id := cohort_filter_id(prop)) is not None:
                    ids.add(cohort_id)
    return ids


def _stored_person_needed(flags: Sequence[Mapping], sent_properties: Mapping) -> bool:
    """Whether the stored person can change an evaluation: a flag filters on a cohort, keeps experience continuity,
    or filters on a person property the SDK did not send (sent properties win over stored ones, so when every
    property the flags read was sent, the stored ones are never read). As PostHog's flag matcher, the database is
    then not asked."""
    for flag in flags:
        if flag.get("ensure_experience_continuity"):
            return True
        filters = flag.get("filters") or {}
        for group in [*(filters.get("groups") or []), *holdout_groups(filters)]:
            for prop in group.get("properties") or []:
                kind = prop.get("type", "person")
                if kind == "cohort" or (kind == "person" and prop.get("key") not in sent_properties):
                    return True
    return False


def _cohort_membership(person: Person, properties: Mapping, wanted: set[int]) -> frozenset[int]:
    """The wanted cohorts the person is in: static ones by membership, dynamic ones by their property filters
    (following cohort references; a loop or a missing or deleted cohort matches nobody)."""
    cohorts = {cohort.pk: cohort for cohort in Cohort.objects.filter(project_id=person.project_id, deleted=False)}
    static_member = set(
        CohortPerson.objects.filter(person=person, cohort__is_static=True).values_list("cohort_id", flat=True)
    )
    memo: dict[int, bool] = {}

    def in_cohort(cohort_id: int | None, depth: int = 0) -> bool:
        cohort = cohorts.get(cohort_id)
        if cohort is None or depth > MAX_COHORT_DEPTH:
            return False
        if cohort_id not in memo:
            if cohort.is_static:
                memo[cohort_id] = cohort_id in static_member
            else:
                memo[cohort_id] = person_matches_cohort_filters(
                    cohort.filters or {}, properties, lambda other: in_cohort(other, depth + 1)
                )
        return memo[cohort_id]

    return frozenset(cohort_id for cohort_id in wanted if in_cohort(cohort_id))


def _hash_keys(
    *,
    project_id: int,
    persons: list[Person],
    own: Person | None,
    flags: Sequence[Mapping],
    anon_distinct_id: str | None,
) -> dict[str, str]:
    continuity = [flag["key"] for flag in flags if flag.get("ensure_experience_continuity")]
    if not continuity or not persons:
        return {}
    if anon_distinct_id:
        # First write wins: existing overrides are kept.
        FeatureFlagHashKeyOverride.objects.bulk_create(
            [
                FeatureFlagHashKeyOverride(
                    project_id=project_id, person=person, feature_flag_key=key, hash_key=anon_distinct_id
                )
                for person in persons
                for key in continuity
            ],
            ignore_conflicts=True,
        )
    rows = FeatureFlagHashKeyOverride.objects.filter(person__in=persons, feature_flag_key__in=continuity)
    hash_keys: dict[str, str] = {}
    for row in sorted(rows, key=lambda row: own is not None and row.person_id == own.pk):
        hash_keys[row.feature_flag_key] = row.hash_key  # the distinct id's own person's last, so it wins
    return hash_keys


def flag_person_context(
    *,
    project_id: int,
    distinct_id: str,
    sent_properties: Mapping,
    flags: Sequence[Mapping],
    anon_distinct_id: str | None = None,
) -> FlagPersonContext:
    """The stored person of `distinct_id` (if any) as flag evaluation sees it. An unknown person belongs to no
    cohort and has only the sent properties."""
    if not _stored_person_needed(flags, sent_properties):
        return FlagPersonContext(properties=dict(sent_properties))
    ids = [distinct_id] + ([anon_distinct_id] if anon_distinct_id and anon_distinct_id != distinct_id else [])
    owners = {
        row.distinct_id: row.person
        for row in PersonDistinctId.objects.filter(project_id=project_id, distinct_id__in=ids).select_related("person")
    }
    own = owners.get(distinct_id)
    properties = {**(own.properties if own is not None else {}), **sent_properties}
    wanted = _referenced_cohorts(flags)
    cohort_ids = _cohort_membership(own, properties, wanted) if own is not None and wanted else frozenset()
    persons = list({person.pk: person for person in owners.values()}.values())
    hash_keys = _hash_keys(
        project_id=project_id, persons=persons, own=own, flags=flags, anon_distinct_id=anon_distinct_id
    )
    return FlagPersonContext(properties=properties, cohort_ids=cohort_ids, hash_keys=hash_keys)


def cohorts_for_local_evaluation(*, project_id: int, flags: Sequence[Mapping]) -> dict[str, dict]:
    """The dynamic cohorts the flags reference (and those they reference), id → property tree, for SDKs that
    evaluate locally; static cohorts are left out, so SDKs ask the server for flags that use them."""
    cohorts = {cohort.pk: cohort for cohort in Cohort.objects.filter(project_id=project_id, deleted=False)}
    shipped: dict[str, dict] = {}
    pending = list(_referenced_cohorts(flags))
    while pending:
        cohort = cohorts.get(pending.pop())
        if cohort is None or cohort.is_static or str(cohort.pk) in shipped:
            continue
        tree = (cohort.filters or {}).get("properties")
        if isinstance(tree, Mapping):
            shipped[str(cohort.pk)] = tree
            pending.extend(_tree_cohorts(tree))
    return shipped


def _tree_cohorts(node: Mapping) -> list[int]:
    if node.get("type") in ("AND", "OR"):
        return [
            cohort
            for child in node.get("values") or []
            if isinstance(child, Mapping)
            for cohort in _tree_cohorts(child)
        ]
    cohort_id = cohort_filter_id(node)
    return [] if cohort_id is None else [cohort_id]
