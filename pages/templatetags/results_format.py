"""Template tags writing a metric's numbers with `pages.formatting`, and the results page link for the browsable API."""

from django import template
from django.urls import reverse

from pages import formatting

register = template.Library()


@register.simple_tag
def value_text(variant, metric) -> str:
    return formatting.value_text(variant.value, proportion=metric.is_proportion)


@register.simple_tag
def delta_text(variant, metric, relative: bool) -> str:
    return formatting.delta_text(variant.delta, relative=relative, proportion=metric.is_proportion)


@register.simple_tag
def interval_text(variant, metric, relative: bool) -> str:
    return formatting.interval_text(variant.interval, relative=relative, proportion=metric.is_proportion)


@register.filter
def chance_text(chance) -> str:
    return formatting.chance_text(chance)


@register.filter
def p_value_text(p_value) -> str:
    return formatting.p_value_text(p_value)


@register.simple_tag
def experiment_page_url(view, response) -> str:
    """On a successful browsable-API experiment detail, the URL of its results page; empty anywhere else."""
    if (
        getattr(view, "basename", None) != "project_experiments"
        or getattr(view, "action", None) != "retrieve"
        or getattr(response, "status_code", None) != 200
    ):
        return ""
    return reverse("pages:experiment", kwargs={"project_id": view.project.pk, "experiment_id": response.data["id"]})
