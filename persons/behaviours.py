"""The behavioural leaf of cohort filters (`{"type": "behavioral", "value": "performed_event", ...}`), parsed once:
cohort writes validate with it and the calculation (persons/services/behaviours.py) computes the same definition.

Every window is rolling, counted back from the moment of the calculation (`now`); a unit is PostHog's
`INTERVAL_TO_SECONDS` (a month is 30 days, a year 365). `explicit_datetime` (ISO, or relative such as `-30d`)
replaces `time_value`/`time_interval` as the start of the window of the kinds that have one window.
"""

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from experiments.definitions.metric import MetricProblem, PropertyFilter, parse_property_filters
from experiments.metrics.spec import PROPERTY_OPERATORS
from persons import messages

BEHAVIORAL = "behavioral"
PERFORMED_EVENT = "performed_event"
PERFORMED_EVENT_MULTIPLE = "performed_event_multiple"
PERFORMED_EVENT_FIRST_TIME = "performed_event_first_time"
PERFORMED_EVENT_SEQUENCE = "performed_event_sequence"
PERFORMED_EVENT_REGULARLY = "performed_event_regularly"
STOPPED_PERFORMING_EVENT = "stopped_performing_event"
RESTARTED_PERFORMING_EVENT = "restarted_performing_event"
BEHAVIOURS = (
    PERFORMED_EVENT,
    PERFORMED_EVENT_MULTIPLE,
    PERFORMED_EVENT_FIRST_TIME,
    PERFORMED_EVENT_SEQUENCE,
    PERFORMED_EVENT_REGULARLY,
    STOPPED_PERFORMING_EVENT,
    RESTARTED_PERFORMING_EVENT,
)
# Kinds whose window is time_value/time_interval (or explicit_datetime); the others split time into several
# windows from time_value and seq_time_value, where an explicit start has no meaning.
SINGLE_WINDOW = (PERFORMED_EVENT, PERFORMED_EVENT_MULTIPLE, PERFORMED_EVENT_FIRST_TIME, PERFORMED_EVENT_SEQUENCE)
INTERVAL_SECONDS = {
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "year": 365 * 86400,
}
# PostHog's count operators (`get_count_operator`); no operator means exactly.
COUNT_OPERATORS = {"gte": ">=", "lte": "<=", "gt": ">", "lt": "<", "eq": "=", "exact": "="}
LEAF_KEYS = frozenset(
    {
        "type",
        "key",
        "value",
        "event_type",
        "time_value",
        "time_interval",
        "negation",
        "operator",
        "operator_value",
        "seq_time_interval",
        "seq_time_value",
        "seq_event",
        "seq_event_type",
        "total_periods",
        "min_periods",
        "event_filters",
        "explicit_datetime",
    }
)
MAX_WINDOW_YEARS = 10
MAX_WINDOW = dt.timedelta(days=MAX_WINDOW_YEARS * 365)
MAX_TOTAL_PERIODS = 100
MAX_EVENT_NAME_LENGTH = 400
_RELATIVE_DATE = re.compile(r"^-(\d+)([hdwmy])$")
_RELATIVE_UNITS = {"h": "hour", "d": "day", "w": "week", "m": "month", "y": "year"}


class BehaviourProblem(ValueError):
    """What is wrong with a behavioural leaf, naming the leaf's place in the filters and the field."""


@dataclass(frozen=True)
class Behaviour:
    kind: str
    event: str
    negation: bool
    event_filters: tuple[PropertyFilter, ...]
    # The window: a fixed start (absolute explicit_datetime), or a length back from now.
    start: dt.datetime | None = None
    lookback: dt.timedelta | None = None
    # The more recent window of stopped/restarted, and the sequence's time from the first event to the second.
    seq_window: dt.timedelta | None = None
    seq_event: str | None = None
    count_operator: str | None = None  # SQL comparison: >=, <=, >, <, =
    operator_value: int | None = None
    min_periods: int | None = None
    total_periods: int | None = None

    def since(self, now: dt.datetime) -> dt.datetime:
        return self.start if self.start is not None else now - self.lookback


def is_behavioural(node: object) -> bool:
    return isinstance(node, Mapping) and node.get("type") == BEHAVIORAL


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Leaf:
    """Field readers for one leaf; each problem names `<path>.<field>`."""

    def __init__(self, raw: Mapping, path: str) -> None:
        self.raw = raw
        self.path = path

    def problem(self, message: str, **values) -> BehaviourProblem:
        return BehaviourProblem(messages.BEHAVIOUR_INVALID.format(path=self.path, problem=message.format(**values)))

    def event_name(self, field: str) -> str:
        value = self.raw.get(field)
        if isinstance(value, str) and value and len(value) <= MAX_EVENT_NAME_LENGTH:
            return value
        raise self.problem(messages.BEHAVIOUR_EVENT_INVALID, field=field, limit=MAX_EVENT_NAME_LENGTH)

    def event_type(self, field: str) -> None:
        value = self.raw.get(field, "events")
        if value == "actions":
            raise self.problem(messages.BEHAVIOUR_ACTIONS, field=field)
        if value != "events":
            raise self.problem(messages.BEHAVIOUR_EVENT_TYPE_INVALID, field=field)

    def positive(self, field: str, maximum: int | None = None) -> int:
        value = self.raw.get(field)
        if not (_is_int(value) and value >= 1 and (maximum is None or value <= maximum)):
            if maximum is None:
                raise self.problem(messages.BEHAVIOUR_POSITIVE_INTEGER, field=field)
            raise self.problem(messages.BEHAVIOUR_INTEGER_RANGE, field=field, maximum=maximum)
        return value

    def duration(self, value_field: str, interval_field: str) -> dt.timedelta:
        value = self.positive(value_field)
        interval = self.raw.get(interval_field)
        if interval not in INTERVAL_SECONDS:
            raise self.problem(
                messages.BEHAVIOUR_INTERVAL_INVALID, field=interval_field, units=", ".join(INTERVAL_SECONDS)
            )
        if value * INTERVAL_SECONDS[interval] > MAX_WINDOW.total_seconds():
            raise self.problem(messages.BEHAVIOUR_WINDOW_TOO_LONG, field=value_field, years=MAX_WINDOW_YEARS)
        return dt.timedelta(seconds=value * INTERVAL_SECONDS[interval])

    def window(self) -> tuple[dt.datetime | None, dt.timedelta | None]:
        """(start, lookback): `explicit_datetime` wins over time_value/time_interval."""
        explicit = self.raw.get("explicit_datetime")
        if explicit is None:
            return None, self.duration("time_value", "time_interval")
        if not isinstance(explicit, str):
            raise self.problem(messages.BEHAVIOUR_EXPLICIT_DATETIME_INVALID)
        if match := _RELATIVE_DATE.match(explicit.strip()):
            seconds = int(match.group(1)) * INTERVAL_SECONDS[_RELATIVE_UNITS[match.group(2)]]
            if seconds > MAX_WINDOW.total_seconds():
                raise self.problem(
                    messages.BEHAVIOUR_WINDOW_TOO_LONG, field="explicit_datetime", years=MAX_WINDOW_YEARS
                )
            return None, dt.timedelta(seconds=seconds)
        try:
            parsed = dt.datetime.fromisoformat(explicit.strip())
        except ValueError:
            raise self.problem(messages.BEHAVIOUR_EXPLICIT_DATETIME_INVALID) from None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)), None

    def count_operator(self) -> str:
        operator = self.raw.get("operator")
        if operator is None:
            return "="
        if operator not in COUNT_OPERATORS:
            raise self.problem(messages.BEHAVIOUR_OPERATOR_INVALID, operators=", ".join(COUNT_OPERATORS))
        return COUNT_OPERATORS[operator]

    def event_filters(self) -> tuple[PropertyFilter, ...]:
        raw_filters = self.raw.get("event_filters")
        if raw_filters is not None and not isinstance(raw_filters, list):
            raise self.problem(messages.BEHAVIOUR_FILTERS_NOT_LIST)
        try:
            filters = parse_property_filters(raw_filters, "event_filters")
        except MetricProblem as problem:
            raise self.problem("{problem}.", problem=problem) from None
        for property_filter in filters:
            if property_filter.type != "event":
                raise self.problem(messages.BEHAVIOUR_FILTER_TYPE, type=property_filter.type)
            if property_filter.operator not in PROPERTY_OPERATORS:
                raise self.problem(
                    messages.BEHAVIOUR_FILTER_OPERATOR,
                    operator=property_filter.operator,
                    operators=", ".join(PROPERTY_OPERATORS),
                )
        return filters


def parse_behaviour(raw: Mapping, path: str = "filters") -> Behaviour:
    """The behavioural leaf `raw` (found at `path`), or BehaviourProblem naming the field that is wrong."""
    leaf = _Leaf(raw, path)
    unknown = sorted(str(key) for key in raw if key not in LEAF_KEYS)
    if unknown:
        raise leaf.problem(messages.BEHAVIOUR_UNKNOWN_KEYS, keys=", ".join(unknown))
    kind = raw.get("value")
    if kind not in BEHAVIOURS:
        raise leaf.problem(messages.BEHAVIOUR_VALUE_INVALID, kinds=", ".join(BEHAVIOURS))
    leaf.event_type("event_type")
    event = leaf.event_name("key")
    negation = raw.get("negation", False)
    if negation is None:
        negation = False
    if not isinstance(negation, bool):
        raise leaf.problem(messages.BEHAVIOUR_NEGATION_INVALID)
    fields: dict = {"kind": kind, "event": event, "negation": negation, "event_filters": leaf.event_filters()}
    if kind in SINGLE_WINDOW:
        fields["start"], fields["lookback"] = leaf.window()
    elif raw.get("explicit_datetime") is not None:
        raise leaf.problem(messages.BEHAVIOUR_EXPLICIT_DATETIME_UNUSED, kind=kind)
    else:
        fields["lookback"] = leaf.duration("time_value", "time_interval")
    if kind == PERFORMED_EVENT_MULTIPLE:
        fields["count_operator"] = leaf.count_operator()
        fields["operator_value"] = leaf.positive("operator_value")
    elif kind == PERFORMED_EVENT_SEQUENCE:
        leaf.event_type("seq_event_type")
        fields["seq_event"] = leaf.event_name("seq_event")
        fields["seq_window"] = leaf.duration("seq_time_value", "seq_time_interval")
    elif kind in (STOPPED_PERFORMING_EVENT, RESTARTED_PERFORMING_EVENT):
        fields["seq_window"] = leaf.duration("seq_time_value", "seq_time_interval")
        if fields["seq_window"] >= fields["lookback"]:
            raise leaf.problem(messages.BEHAVIOUR_SEQ_WINDOW_NOT_SHORTER)
    elif kind == PERFORMED_EVENT_REGULARLY:
        fields["count_operator"] = leaf.count_operator()
        fields["operator_value"] = leaf.positive("operator_value")
        fields["total_periods"] = leaf.positive("total_periods", MAX_TOTAL_PERIODS)
        fields["min_periods"] = leaf.positive("min_periods")
        if fields["min_periods"] > fields["total_periods"]:
            raise leaf.problem(messages.BEHAVIOUR_MIN_PERIODS_TOO_MANY)
        if fields["lookback"] * fields["total_periods"] > MAX_WINDOW:
            raise leaf.problem(messages.BEHAVIOUR_WINDOW_TOO_LONG, field="total_periods", years=MAX_WINDOW_YEARS)
    return Behaviour(**fields)


def behavioural_leaves(node: object, path: str = "filters.properties"):
    """(leaf, path) for every behavioural leaf of an AND/OR tree, paths such as `filters.properties.values[0]`."""
    if not isinstance(node, Mapping):
        return
    if node.get("type") in ("AND", "OR"):
        for index, child in enumerate(node.get("values") or []):
            yield from behavioural_leaves(child, f"{path}.values[{index}]")
    elif is_behavioural(node):
        yield node, path
