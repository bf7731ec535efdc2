"""Reads of feature flags and cohorts, shaped for their serializers."""

from django.db.models import Prefetch, QuerySet

from experiments.models import Experiment
from flags.evaluation import cohort_filter_id
from flags.models import Cohort, FeatureFlag
from persons.cohorts import cohort_has_behavioral_filters


def feature_flags_for_serializer(queryset: QuerySet[FeatureFlag]) -> QuerySet[FeatureFlag]:
    """Adds what FeatureFlagSerializer reads: users, and the live experiments behind `experiment_set`."""
    live_experiments = Experiment.objects.alive().only("id", "feature_flag_id").order_by("id")
    return queryset.select_related("created_by", "last_modified_by").prefetch_related(
        Prefetch("experiments", queryset=live_experiments, to_attr="live_experiments")
    )


def running_experiment_using_flag(flag: FeatureFlag) -> Experiment | None:
    """A launched, not yet ended, not deleted experiment on this flag, if any (the oldest one)."""
    return (
        Experiment.objects.alive()
        .filter(feature_flag=flag, start_date__isnull=False, end_date__isnull=True)
        .order_by("id")
        .first()
    )


def _flag_cohort_ids(filters: dict) -> list[int]:
    return [
        cohort_id
        for group in [*(filters.get("groups") or []), *(filters.get("holdout_groups") or [])]
        for prop in group.get("properties") or []
        if (cohort_id := cohort_filter_id(prop)) is not None
    ]


def _cohort_ids_in(node) -> set[int]:
    if not isinstance(node, dict):
        return set()
    if node.get("type") in ("AND", "OR"):
        return {cohort_id for child in node.get("values") or [] for cohort_id in _cohort_ids_in(child)}
    cohort_id = cohort_filter_id(node)
    return set() if cohort_id is None else {cohort_id}


def active_flag_using_cohort(*, cohort: Cohort) -> FeatureFlag | None:
    """An active, live flag of the project whose release conditions use the cohort, directly or through cohorts
    that reference it (PostHog then refuses event filters on it)."""
    references = {
        other.pk: _cohort_ids_in((other.filters or {}).get("properties"))
        for other in Cohort.objects.filter(project_id=cohort.project_id, deleted=False).only("pk", "filters")
    }
    dependants, frontier = {cohort.pk}, {cohort.pk}
    while frontier:
        frontier = {pk for pk, used in references.items() if used & frontier} - dependants
        dependants |= frontier
    flags = FeatureFlag.objects.alive().filter(project_id=cohort.project_id, active=True).order_by("id")
    return next((flag for flag in flags if dependants.intersection(_flag_cohort_ids(flag.filters or {}))), None)


def behavioral_cohort_in_flag_filters(*, project_id: int, filters: dict) -> Cohort | None:
    """The first cohort the flag's release conditions use that filters on events (directly or through a cohort it
    references): flags cannot be evaluated on those."""
    referenced = _flag_cohort_ids(filters)
    if not referenced:
        return None
    cohorts = {cohort.pk: cohort for cohort in Cohort.objects.filter(project_id=project_id)}

    def filters_of(cohort_id: int):
        cohort = cohorts.get(cohort_id)
        return cohort.filters if cohort is not None else None

    for cohort_id in referenced:
        cohort = cohorts.get(cohort_id)
        if (
            cohort is not None
            and not cohort.is_static
            and cohort_has_behavioral_filters(cohort.filters or {}, filters_of)
        ):
            return cohort
    return None
