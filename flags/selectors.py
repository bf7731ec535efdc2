"""Reads of feature flags and cohorts, shaped for their serializers."""

from django.db.models import Prefetch, QuerySet

from experiments.models import Experiment
from flags.models import FeatureFlag


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
