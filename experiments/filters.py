"""Query parameters of the experiments list (§4.1), parsed by a django-filter FilterSet.

Absent parameters take today's defaults (non-archived experiments, newest first), as django-filter's docs suggest:
by filling them into the data before validation. Invalid values are 400s naming the parameter.
"""

import django_filters
from django import forms
from django.db.models import QuerySet

from experiments import messages
from experiments.models import Experiment
from experiments.selectors import (
    DEFAULT_ORDER,
    EXPERIMENT_ORDER_FIELDS,
    filter_experiments_by_status,
    order_experiments,
)

STATUS_FILTERS = ("draft", "running", "paused", "stopped", "complete", "all")
DEFAULTS = {"archived": "false", "order": DEFAULT_ORDER}


def _status(value: str) -> str:
    if value.lower() not in STATUS_FILTERS:
        raise forms.ValidationError(messages.INVALID_STATUS_FILTER.format(status=value), code="invalid_input")
    return value.lower()


def _order(value: str) -> str:
    if value.lstrip("-") not in EXPERIMENT_ORDER_FIELDS or value.count("-") > 1:
        raise forms.ValidationError(messages.INVALID_ORDER_FIELD.format(order=value), code="invalid_input")
    return value


class _IntegerFilter(django_filters.NumberFilter):
    """An integer id whose error names the parameter, as PostHog does for feature_flag_id."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.extra["error_messages"] = {"invalid": messages.MUST_BE_INTEGER.format(name=self.field_name)}


class ExperimentFilter(django_filters.FilterSet):
    status = django_filters.CharFilter(
        method="filter_status", help_text="draft, running, paused, stopped, complete (= stopped) or all."
    )
    archived = django_filters.CharFilter(method="filter_archived", help_text="`true` lists archived experiments only.")
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="Substring of the name.")
    created_by_id = _IntegerFilter(field_name="created_by_id")
    feature_flag_id = _IntegerFilter(field_name="feature_flag_id")
    order = django_filters.CharFilter(
        method="filter_order", help_text=f"One of {', '.join(EXPERIMENT_ORDER_FIELDS)}, `-` for descending."
    )

    class Meta:
        model = Experiment
        fields: list = []

    def __init__(self, data=None, *args, **kwargs) -> None:
        if data is not None:
            data = data.copy()
            for name, value in DEFAULTS.items():
                if not data.get(name):
                    data[name] = value
        super().__init__(data, *args, **kwargs)
        self.filters["status"].field.validators.append(_status)
        self.filters["order"].field.validators.append(_order)

    def filter_status(self, queryset: QuerySet[Experiment], name: str, value: str) -> QuerySet[Experiment]:
        return filter_experiments_by_status(queryset, value.lower())

    def filter_archived(self, queryset: QuerySet[Experiment], name: str, value: str) -> QuerySet[Experiment]:
        return queryset.filter(archived=value.lower() == "true")

    def filter_order(self, queryset: QuerySet[Experiment], name: str, value: str) -> QuerySet[Experiment]:
        return order_experiments(queryset, value)
