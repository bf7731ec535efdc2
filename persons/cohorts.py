"""Cohort filters evaluated for one person, without the database: PostHog's AND/OR tree of person-property and
cohort leaves. Behavioural leaves (`performed_event`, …, persons/behaviours.py) need the person's events and are
computed by the cohort calculation (persons/services/cohorts.py), never here."""

from collections.abc import Callable, Mapping

from flags.evaluation import cohort_filter_id, property_filter_matches
from persons.behaviours import is_behavioural


def cohort_has_behavioral_filters(filters: Mapping, cohort_filters: Callable[[int], Mapping | None]) -> bool:
    """Whether the cohort's filters, or those of a cohort they reference, use a behavioural leaf."""
    seen: set[int] = set()

    def visit(node) -> bool:
        if not isinstance(node, Mapping):
            return False
        if node.get("type") in ("AND", "OR"):
            return any(visit(child) for child in node.get("values") or [])
        if is_behavioural(node):
            return True
        cohort_id = cohort_filter_id(node)
        if cohort_id is not None and cohort_id not in seen:
            seen.add(cohort_id)
            return visit((cohort_filters(cohort_id) or {}).get("properties"))
        return False

    return visit(filters.get("properties"))


def person_matches_cohort_filters(
    filters: Mapping, person_properties: Mapping, in_cohort: Callable[[int], bool]
) -> bool:
    """The person matches the cohort's `filters.properties`; an empty tree matches nobody (as PostHog)."""

    def visit(node) -> bool:
        if node.get("type") in ("AND", "OR"):
            children = [child for child in node.get("values") or [] if isinstance(child, Mapping)]
            if not children:
                return False
            results = (visit(child) for child in children)
            return all(results) if node["type"] == "AND" else any(results)
        if node.get("type") == "cohort":
            matched = in_cohort(cohort_filter_id(node))
        elif node.get("type", "person") == "person":
            matched = property_filter_matches(node, person_properties)
        else:
            matched = False
        return matched != bool(node.get("negation"))

    tree = filters.get("properties")
    return isinstance(tree, Mapping) and visit(tree)
