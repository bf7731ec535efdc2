"""Event predicates in SQL: an event name plus PostHog property filters (event, person and cohort ones), evaluated
on the events table joined to the event's person."""

from .dialect import Dialect
from .spec import EventSource, PropertyFilter

NEGATED_OPERATORS = {"is_not": "exact", "not_icontains": "icontains", "not_regex": "regex"}
COMPARISONS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _as_text(value) -> str:
    """Property values compare as text, with JSON's spelling of booleans, as PostHog does."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _positive_match(dialect: Dialect, column: str, property_filter: PropertyFilter, operator: str) -> str:
    params = dialect.params
    text = dialect.text_property(column, property_filter.key)
    if operator == "exact":
        values = ", ".join(params(_as_text(value)) for value in property_filter.values)
        return f"{text} IN ({values})"
    if operator == "icontains":
        return dialect.contains_case_insensitive(text, params(_as_text(property_filter.values[0])))
    if operator == "regex":
        return dialect.regex_match(text, params(_as_text(property_filter.values[0])))
    raise AssertionError(f"No positive form for operator {operator!r}")


def person_alias(alias: str) -> str:
    """The persons row joined to the events `alias` (persons_join in query.py)."""
    return f"{alias}_person"


def uses_persons(filters) -> bool:
    return any(property_filter.type != "event" for property_filter in filters)


def property_filter_sql(dialect: Dialect, alias: str, property_filter: PropertyFilter) -> str:
    """The filter on the event `alias` (its properties, its person's properties, or its person's cohorts). A
    missing property fails every positive operator and passes every negated one (is_not, not_…)."""
    if property_filter.type == "cohort":
        member = dialect.cohort_member(property_filter.values[0], person_alias(alias))
        return f"(NOT {member})" if property_filter.operator == "not_in" else f"({member})"
    column = f"{person_alias(alias) if property_filter.type == 'person' else alias}.properties"
    operator = property_filter.operator
    if operator in NEGATED_OPERATORS:
        positive = _positive_match(dialect, column, property_filter, NEGATED_OPERATORS[operator])
        return f"(NOT COALESCE({positive}, FALSE))"
    if operator in COMPARISONS:
        try:
            number = float(property_filter.values[0])
        except (TypeError, ValueError, OverflowError):
            return "(1 = 0)"
        value = dialect.number_property(column, property_filter.key)
        return f"({value} {COMPARISONS[operator]} {dialect.params(number)})"
    if operator == "is_set":
        return f"({dialect.text_property(column, property_filter.key)} IS NOT NULL)"
    if operator == "is_not_set":
        return f"({dialect.text_property(column, property_filter.key)} IS NULL)"
    return f"COALESCE({_positive_match(dialect, column, property_filter, operator)}, FALSE)"


def properties_sql(dialect: Dialect, alias: str, filters: tuple[PropertyFilter, ...]) -> list[str]:
    return [property_filter_sql(dialect, alias, property_filter) for property_filter in filters]


def source_sql(dialect: Dialect, alias: str, source: EventSource) -> str:
    """The predicate an event row (`alias`) must meet to count for `source`; TRUE for "all events"."""
    conditions = []
    if source.event is not None:
        conditions.append(f"{alias}.event = {dialect.params(source.event)}")
    conditions.extend(properties_sql(dialect, alias, source.properties))
    return "(" + " AND ".join(conditions) + ")" if conditions else "(1 = 1)"


def event_names(sources: list[EventSource]) -> list[str] | None:
    """The event names to scan for, or None when a source takes every event."""
    names = []
    for source in sources:
        if source.event is None:
            return None
        if source.event not in names:
            names.append(source.event)
    return names
