"""Query parameters of the feature flag list, parsed by a django-filter FilterSet."""

import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet

from experiments.models import Experiment
from flags.models import EvaluationRuntime, FeatureFlag


class FlagType:
    BOOLEAN = "boolean"
    MULTIVARIANT = "multivariant"
    EXPERIMENT = "experiment"

    choices = [(BOOLEAN, BOOLEAN), (MULTIVARIANT, MULTIVARIANT), (EXPERIMENT, EXPERIMENT)]


class FeatureFlagFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search", help_text="Substring of the key or the name.")
    active = django_filters.BooleanFilter()
    created_by_id = django_filters.NumberFilter()
    evaluation_runtime = django_filters.ChoiceFilter(choices=EvaluationRuntime.choices)
    type = django_filters.ChoiceFilter(
        choices=FlagType.choices,
        method="filter_type",
        help_text="boolean: no variants; multivariant: at least one variant; experiment: used by an experiment.",
    )

    class Meta:
        model = FeatureFlag
        fields: list = []

    def filter_search(self, queryset: QuerySet[FeatureFlag], name: str, value: str) -> QuerySet[FeatureFlag]:
        return queryset.filter(Q(key__icontains=value) | Q(name__icontains=value))

    def filter_type(self, queryset: QuerySet[FeatureFlag], name: str, value: str) -> QuerySet[FeatureFlag]:
        has_variants = Q(filters__multivariate__variants__0__isnull=False)
        if value == FlagType.BOOLEAN:
            return queryset.exclude(has_variants)
        if value == FlagType.MULTIVARIANT:
            return queryset.filter(has_variants)
        live_experiments = Experiment.objects.alive().filter(feature_flag=OuterRef("pk"))
        return queryset.filter(Exists(live_experiments))
