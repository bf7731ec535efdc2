"""Reading a metric's JSON (api.md §5.1) into a typed, validated spec.

Everything the SQL builders need is resolved here, so a metric the engine cannot compute fails with a 400 that
names the option before any query runs.
"""

import datetime as dt
from dataclasses import dataclass

from experiments.stats.config import StatsConfig, StatsConfigError
from experiments_api.exceptions import DomainError

INVALID_METRIC_MESSAGE = "Invalid metric: {problem}."
UNSUPPORTED_MESSAGE = "Cannot compute this metric: {option} is not supported."

TIME_UNIT_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
}
MEAN_MATHS = ("total", "sum", "avg", "min", "max", "unique_session", "dau")
PROPERTY_MATHS = frozenset({"sum", "avg", "min", "max"})
PROPERTY_OPERATORS = (
    "exact",
    "is_not",
    "icontains",
    "not_icontains",
    "regex",
    "not_regex",
    "gt",
    "gte",
    "lt",
    "lte",
    "is_set",
    "is_not_set",
)
FUNNEL_ORDERS = ("ordered", "unordered")
RETENTION_UNITS = ("second", "minute", "hour", "day", "week")
START_HANDLINGS = ("first_seen", "last_seen")
# Longer windows than this are refused (a timedelta tops out near 2.7 million years; SQL integers earlier).
MAX_WINDOW_YEARS = 10
MAX_WINDOW_SECONDS = MAX_WINDOW_YEARS * 365 * 86400


def invalid(problem: str) -> DomainError:
    return DomainError(INVALID_METRIC_MESSAGE.format(problem=problem), code="invalid_metric", attr="metric")


def unsupported(option: str) -> DomainError:
    return DomainError(UNSUPPORTED_MESSAGE.format(option=option), code="unsupported_metric", attr="metric")


@dataclass(frozen=True)
class PropertyFilter:
    key: str
    operator: str
    values: tuple  # one entry unless the operator is exact/is_not with a list


@dataclass(frozen=True)
class EventSource:
    """The events a metric counts: a name (None = every event), property filters and the per-unit math."""

    event: str | None
    properties: tuple[PropertyFilter, ...]
    math: str = "total"
    math_property: str | None = None


@dataclass(frozen=True)
class Winsorization:
    lower: float | None
    upper: float | None
    ignore_zeros: bool


@dataclass(frozen=True)
class MeanMetric:
    source: EventSource
    winsorization: Winsorization | None


@dataclass(frozen=True)
class FunnelMetric:
    steps: tuple[EventSource, ...]
    ordered: bool


@dataclass(frozen=True)
class RatioMetric:
    numerator: EventSource
    denominator: EventSource


@dataclass(frozen=True)
class RetentionMetric:
    start: EventSource
    completion: EventSource
    window_start: int
    window_end: int
    window_unit: str
    last_seen: bool


@dataclass(frozen=True)
class MetricSpec:
    metric_type: str
    definition: MeanMetric | FunnelMetric | RatioMetric | RetentionMetric
    conversion_window: dt.timedelta | None
    cuped_lookback: dt.timedelta | None  # None when CUPED is off or the metric type has no covariate


def _require_dict(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise invalid(f"{what} must be an object")
    return value


def _property_values(raw: dict, operator: str) -> tuple:
    if operator in ("is_set", "is_not_set"):
        return ()
    if "value" not in raw or raw["value"] is None:
        raise invalid(f"property filter '{raw.get('key')}' needs a value")
    value = raw["value"]
    if isinstance(value, list):
        if operator not in ("exact", "is_not") or not value:
            raise invalid(f"property filter '{raw['key']}' with operator '{operator}' needs one value")
        return tuple(value)
    if isinstance(value, dict):
        raise invalid(f"property filter '{raw['key']}' has an object value")
    return (value,)


def parse_property_filters(raw_filters, what: str) -> tuple[PropertyFilter, ...]:
    """Event property filters in PostHog's format; other filter types (person, cohort, ...) are unsupported."""
    if raw_filters is None:
        return ()
    if not isinstance(raw_filters, list):
        raise invalid(f"{what} must be a list of property filters")
    filters = []
    for raw in raw_filters:
        raw = _require_dict(raw, f"each of {what}")
        if raw.get("type", "event") != "event":
            raise unsupported(f"property filters of type '{raw.get('type')}' (in {what})")
        key = raw.get("key")
        if not isinstance(key, str) or not key:
            raise invalid(f"a property filter in {what} has no key")
        operator = raw.get("operator") or "exact"
        if operator not in PROPERTY_OPERATORS:
            raise unsupported(f"property filter operator '{operator}'")
        filters.append(PropertyFilter(key=key, operator=operator, values=_property_values(raw, operator)))
    return tuple(filters)


def parse_event_source(raw, what: str, *, allow_math: bool = True) -> EventSource:
    raw = _require_dict(raw, what)
    kind = raw.get("kind", "EventsNode")
    if kind in ("ActionsNode", "ExperimentDataWarehouseNode"):
        raise unsupported(f"{kind} sources")
    if kind != "EventsNode":
        raise invalid(f"{what} must be an EventsNode")
    event = raw.get("event")
    if event is not None and not isinstance(event, str):
        raise invalid(f"{what}.event must be a string or null")
    if raw.get("math_property_type") not in (None, "event_properties"):
        raise unsupported(f"math_property_type '{raw['math_property_type']}'")
    math = raw.get("math") or "total"
    if not isinstance(math, str):
        raise invalid(f"{what}.math must be a string")
    math_property = raw.get("math_property")
    if allow_math:
        if math not in MEAN_MATHS:
            raise unsupported(f"math '{math}'")
        if math in PROPERTY_MATHS and (not isinstance(math_property, str) or not math_property):
            raise invalid(f"{what} with math '{math}' needs a math_property")
    return EventSource(
        event=event,
        properties=parse_property_filters(raw.get("properties"), f"{what}.properties"),
        math=math if allow_math else "total",
        math_property=math_property if math in PROPERTY_MATHS else None,
    )


def _time_window(value, unit, what: str) -> dt.timedelta | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise invalid(f"{what} must be a positive integer")
    unit = unit or "day"
    if not isinstance(unit, str) or unit not in TIME_UNIT_SECONDS:
        raise invalid(f"{what}_unit must be one of {', '.join(TIME_UNIT_SECONDS)}")
    if value * TIME_UNIT_SECONDS[unit] > MAX_WINDOW_SECONDS:
        raise invalid(f"{what} must be at most {MAX_WINDOW_YEARS} years")
    return dt.timedelta(seconds=value * TIME_UNIT_SECONDS[unit])


def _percentile(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise invalid(f"{name} must be a number between 0 and 1")
    return float(value)


def _parse_mean(metric: dict) -> MeanMetric:
    if metric.get("threshold") is not None:
        raise unsupported("a mean metric threshold")
    lower = _percentile(metric.get("lower_bound_percentile"), "lower_bound_percentile")
    upper = _percentile(metric.get("upper_bound_percentile"), "upper_bound_percentile")
    if lower is not None and upper is not None and lower > upper:
        raise invalid("lower_bound_percentile must not exceed upper_bound_percentile")
    winsorization = None
    if lower is not None or upper is not None:
        winsorization = Winsorization(lower=lower, upper=upper, ignore_zeros=bool(metric.get("ignore_zeros")))
    return MeanMetric(source=parse_event_source(metric.get("source"), "source"), winsorization=winsorization)


def _parse_funnel(metric: dict) -> FunnelMetric:
    series = metric.get("series")
    if not isinstance(series, list) or not series:
        raise invalid("a funnel metric needs at least one step in series")
    order = metric.get("funnel_order_type") or "ordered"
    if order not in FUNNEL_ORDERS:
        raise unsupported(f"funnel_order_type '{order}'")
    steps = tuple(parse_event_source(step, f"series[{index}]", allow_math=False) for index, step in enumerate(series))
    return FunnelMetric(steps=steps, ordered=order == "ordered")


def _parse_ratio(metric: dict) -> RatioMetric:
    return RatioMetric(
        numerator=parse_event_source(metric.get("numerator"), "numerator"),
        denominator=parse_event_source(metric.get("denominator"), "denominator"),
    )


def _window_bound(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(f"{name} must be a non-negative integer")
    return value


def _parse_retention(metric: dict) -> RetentionMetric:
    window_start = _window_bound(metric.get("retention_window_start", 0), "retention_window_start")
    window_end = _window_bound(metric.get("retention_window_end"), "retention_window_end")
    if window_start > window_end:
        raise invalid("retention_window_start must not exceed retention_window_end")
    unit = metric.get("retention_window_unit") or "day"
    if unit == "month":
        raise unsupported("retention_window_unit 'month'")
    if unit not in RETENTION_UNITS:
        raise invalid(f"retention_window_unit must be one of {', '.join(RETENTION_UNITS)}")
    if window_end * TIME_UNIT_SECONDS[unit] > MAX_WINDOW_SECONDS:
        raise invalid(f"retention_window_end must be at most {MAX_WINDOW_YEARS} years")
    start_handling = metric.get("start_handling") or "first_seen"
    if start_handling not in START_HANDLINGS:
        raise invalid(f"start_handling must be one of {', '.join(START_HANDLINGS)}")
    return RetentionMetric(
        start=parse_event_source(metric.get("start_event"), "start_event", allow_math=False),
        completion=parse_event_source(metric.get("completion_event"), "completion_event", allow_math=False),
        window_start=window_start,
        window_end=window_end,
        window_unit=unit,
        last_seen=start_handling == "last_seen",
    )


METRIC_PARSERS = {"mean": _parse_mean, "funnel": _parse_funnel, "ratio": _parse_ratio, "retention": _parse_retention}


def _cuped_lookback(stats_config, metric_type: str, definition) -> dt.timedelta | None:
    """The CUPED pre-exposure window, for mean and ordered-funnel metrics when `stats_config` turns CUPED on."""
    try:
        config = StatsConfig.from_dict(stats_config)
    except StatsConfigError as error:
        raise DomainError(error.message, attr="stats_config") from None
    if not config.cuped or metric_type not in ("mean", "funnel"):
        return None
    if isinstance(definition, FunnelMetric) and not definition.ordered:
        return None
    return dt.timedelta(days=config.cuped_lookback_days)


def parse_metric(metric, *, stats_config) -> MetricSpec:
    metric = _require_dict(metric, "metric")
    kind = metric.get("kind", "ExperimentMetric")
    if kind != "ExperimentMetric":
        raise unsupported(f"metric kind '{kind}'")
    metric_type = metric.get("metric_type")
    if not isinstance(metric_type, str) or metric_type not in METRIC_PARSERS:
        raise invalid(f"metric_type must be one of {', '.join(METRIC_PARSERS)}")
    breakdown_filter = metric.get("breakdownFilter") or {}
    if not isinstance(breakdown_filter, dict):
        raise invalid("breakdownFilter must be an object")
    if breakdown_filter.get("breakdowns"):
        raise unsupported("breakdownFilter")
    definition = METRIC_PARSERS[metric_type](metric)
    return MetricSpec(
        metric_type=metric_type,
        definition=definition,
        conversion_window=_time_window(
            metric.get("conversion_window"), metric.get("conversion_window_unit"), "conversion_window"
        ),
        cuped_lookback=_cuped_lookback(stats_config, metric_type, definition),
    )
