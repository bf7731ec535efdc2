"""The one parser of an experiment metric's JSON (api.md §5.1) into a typed definition.

Writes validate with it (a metric is stored only if it parses), and the SQL engine reads the same definition
(`experiments.metrics.spec` then refuses the options it cannot compute), so the two can never disagree on what a
metric means. Problems are reported as "Invalid metric[ at index N]: <problem>".
"""

import datetime as dt
from dataclasses import dataclass

from experiments import messages
from experiments.stats.config import MetricPrior, StatsConfigError, parse_prior
from experiments_api.exceptions import DomainError

METRIC_KIND = "ExperimentMetric"
LEGACY_METRIC_KINDS = ("ExperimentTrendsQuery", "ExperimentFunnelsQuery")
METRIC_TYPES = ("mean", "funnel", "ratio", "retention", "quantile")
QUANTILE_TYPES = ("unit", "event")
SOURCE_KINDS = ("EventsNode", "ActionsNode", "ExperimentDataWarehouseNode")
FUNNEL_STEP_KINDS = ("EventsNode", "ActionsNode")
MATH_TYPES = ("total", "sum", "avg", "min", "max", "unique_session", "dau", "unique_users")
MATH_TYPES_NEEDING_PROPERTY = frozenset({"sum", "avg", "min", "max"})
GOALS = ("increase", "decrease")
START_HANDLINGS = ("first_seen", "last_seen")
FUNNEL_ORDER_TYPES = ("ordered", "unordered", "strict")
DATA_WAREHOUSE_FIELDS = ("table_name", "timestamp_field", "events_join_key", "data_warehouse_join_key")
METRIC_UUID_MAX_LENGTH = 255
METRIC_NAME_MAX_LENGTH = 400
TIME_UNIT_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
}
# Longer windows than this are refused (a timedelta tops out near 2.7 million years; SQL integers earlier).
MAX_WINDOW_YEARS = 10
MAX_WINDOW_SECONDS = MAX_WINDOW_YEARS * 365 * 86400
# Keys each metric_type must have; sources are checked separately.
REQUIRED_KEYS = {
    "mean": ("source",),
    "quantile": ("source", "quantile"),
    "funnel": ("series",),
    "ratio": ("numerator", "denominator"),
    "retention": (
        "start_event",
        "completion_event",
        "retention_window_start",
        "retention_window_end",
        "retention_window_unit",
        "start_handling",
    ),
}
MAX_BREAKDOWNS = 3
BREAKDOWN_TYPES = ("event", "person", "group", "session")
METRIC_SOURCE_KEYS = ("source", "numerator", "denominator", "start_event", "completion_event")


class MetricProblem(Exception):
    """What is wrong with one metric; callers add which metric it is (unless `standalone`: PostHog's own text)."""

    standalone = False


class BreakdownLimitProblem(MetricProblem):
    """More breakdowns than PostHog allows, answered with PostHog's message as it is."""

    standalone = True

    def __init__(self) -> None:
        super().__init__(messages.TOO_MANY_BREAKDOWNS.format(limit=MAX_BREAKDOWNS))


@dataclass(frozen=True)
class PropertyFilter:
    key: str
    operator: str
    values: tuple  # one entry unless the operator is exact/is_not with a list
    type: str = "event"


@dataclass(frozen=True)
class EventSource:
    """The events a metric counts: a name (None = every event), property filters and the per-unit math.

    `kind` is PostHog's node kind; only EventsNode sources carry `event`, ActionsNode ones `action_id`.
    """

    event: str | None
    properties: tuple[PropertyFilter, ...]
    math: str = "total"
    math_property: str | None = None
    kind: str = "EventsNode"
    action_id: int | None = None
    math_property_type: str | None = None


@dataclass(frozen=True)
class Winsorization:
    lower: float | None
    upper: float | None
    ignore_zeros: bool


@dataclass(frozen=True)
class MeanMetric:
    source: EventSource
    winsorization: Winsorization | None
    threshold: float | None = None


@dataclass(frozen=True)
class QuantileMetric:
    """The `quantile` (0 < q < 1) of the per-unit values of `source` (`unit`) or of every event value (`event`);
    `ignore_zeros` leaves units (or events) whose value is 0 out of the quantile."""

    source: EventSource
    quantile: float
    quantile_type: str = "unit"
    ignore_zeros: bool = False


@dataclass(frozen=True)
class FunnelMetric:
    steps: tuple[EventSource, ...]
    order: str = "ordered"

    @property
    def ordered(self) -> bool:
        return self.order == "ordered"


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
class Breakdown:
    """One `breakdownFilter.breakdowns` item: a property of the unit's first exposure event (`event`) or of its
    person (`person`); `group` and `session` parse, and the engine refuses them."""

    property: str
    type: str = "event"


@dataclass(frozen=True)
class MetricDefinition:
    metric_type: str
    definition: MeanMetric | QuantileMetric | FunnelMetric | RatioMetric | RetentionMetric
    conversion_window: dt.timedelta | None
    breakdowns: tuple[Breakdown, ...] = ()
    # The metric's own Bayesian prior, replacing the experiment's `stats_config.bayesian.prior`; None: no override.
    prior: MetricPrior | None = None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _property_values(raw: dict, operator: str) -> tuple:
    if operator in ("is_set", "is_not_set"):
        return ()
    if raw.get("value") is None:
        raise MetricProblem(messages.PROPERTY_FILTER_WITHOUT_VALUE.format(key=raw["key"]))
    value = raw["value"]
    if isinstance(value, list):
        if operator not in ("exact", "is_not") or not value:
            raise MetricProblem(messages.PROPERTY_FILTER_ONE_VALUE.format(key=raw["key"], operator=operator))
        return tuple(value)
    if isinstance(value, dict):
        raise MetricProblem(messages.PROPERTY_FILTER_OBJECT_VALUE.format(key=raw["key"]))
    return (value,)


def parse_property_filters(raw_filters: object, path: str) -> tuple[PropertyFilter, ...]:
    """Property filters in PostHog's format (`type` defaults to event; which types compute is the engine's call)."""
    if raw_filters is None:
        return ()
    if not isinstance(raw_filters, list):
        raise MetricProblem(messages.PROPERTIES_NOT_LIST.format(path=path.removesuffix(".properties")))
    filters = []
    for raw in raw_filters:
        if not isinstance(raw, dict):
            raise MetricProblem(messages.PROPERTY_FILTER_NOT_OBJECT.format(path=path))
        key = raw.get("key")
        if not isinstance(key, str) or not key:
            raise MetricProblem(messages.PROPERTY_FILTER_WITHOUT_KEY.format(path=path))
        operator = raw.get("operator") or "exact"
        filter_type = raw.get("type") or "event"
        values = _property_values(raw, operator)
        filters.append(PropertyFilter(key=key, operator=str(operator), values=values, type=str(filter_type)))
    return tuple(filters)


def _parse_source(source: object, path: str, kinds: tuple[str, ...]) -> EventSource:
    """An EventsNode (event name or null for all events), ActionsNode (action id) or data warehouse node."""
    if not isinstance(source, dict):
        raise MetricProblem(messages.SOURCE_NOT_OBJECT.format(path=path))
    kind = source.get("kind")
    if kind not in kinds:
        raise MetricProblem(messages.SOURCE_KIND_INVALID.format(path=path, kinds=", ".join(kinds)))
    if kind == "EventsNode" and not isinstance(source.get("event"), str | None):
        raise MetricProblem(messages.EVENT_INVALID.format(path=path))
    if kind == "ActionsNode" and not _is_int(source.get("id")):
        raise MetricProblem(messages.ACTION_ID_INVALID.format(path=path))
    if kind == "ExperimentDataWarehouseNode":
        for field in DATA_WAREHOUSE_FIELDS:
            value = source.get(field)
            if not (isinstance(value, str) and value):
                raise MetricProblem(messages.DATA_WAREHOUSE_FIELD_INVALID.format(path=path, field=field))
    math = source.get("math")
    if math is not None and math not in MATH_TYPES:
        raise MetricProblem(messages.MATH_INVALID.format(path=path))
    math_property = source.get("math_property")
    if math in MATH_TYPES_NEEDING_PROPERTY and not (isinstance(math_property, str) and math_property):
        raise MetricProblem(messages.MATH_PROPERTY_REQUIRED.format(path=path, math=math))
    return EventSource(
        event=source.get("event") if kind == "EventsNode" else None,
        properties=parse_property_filters(source.get("properties"), f"{path}.properties"),
        math=math or "total",
        math_property=math_property if math in MATH_TYPES_NEEDING_PROPERTY else None,
        kind=kind,
        action_id=source.get("id") if kind == "ActionsNode" else None,
        math_property_type=source.get("math_property_type"),
    )


def _time_window(value: object, unit: object, key: str) -> dt.timedelta | None:
    if value is None:
        return None
    if not (_is_int(value) and value >= 1):
        raise MetricProblem(messages.CONVERSION_WINDOW_INVALID)
    seconds = value * TIME_UNIT_SECONDS[unit or "day"]
    if seconds > MAX_WINDOW_SECONDS:
        raise MetricProblem(messages.WINDOW_TOO_LONG.format(key=key, years=MAX_WINDOW_YEARS))
    return dt.timedelta(seconds=seconds)


def _check_common_keys(metric: dict) -> None:
    uuid = metric.get("uuid")
    if uuid is not None and not (isinstance(uuid, str) and len(uuid) <= METRIC_UUID_MAX_LENGTH):
        raise MetricProblem(messages.UUID_INVALID)
    name = metric.get("name")
    if name is not None and not (isinstance(name, str) and len(name) <= METRIC_NAME_MAX_LENGTH):
        raise MetricProblem(messages.NAME_INVALID)
    if metric.get("conversion_window_unit") not in (None, *TIME_UNIT_SECONDS):
        raise MetricProblem(messages.CONVERSION_WINDOW_UNIT_INVALID)
    if metric.get("goal") not in (None, *GOALS):
        raise MetricProblem(messages.GOAL_INVALID)


def _breakdown(raw: object, index: int) -> Breakdown:
    if not isinstance(raw, dict):
        raise MetricProblem(messages.BREAKDOWN_NOT_OBJECT.format(index=index))
    prop = raw.get("property")
    if not isinstance(prop, str) or not prop:
        raise MetricProblem(messages.BREAKDOWN_PROPERTY_INVALID.format(index=index))
    breakdown_type = raw.get("type") or "event"
    if breakdown_type not in BREAKDOWN_TYPES:
        raise MetricProblem(messages.BREAKDOWN_TYPE_INVALID.format(index=index, types=", ".join(BREAKDOWN_TYPES)))
    return Breakdown(property=prop, type=breakdown_type)


def _breakdowns(metric: dict) -> tuple[Breakdown, ...]:
    breakdown_filter = metric.get("breakdownFilter")
    if breakdown_filter is None:
        return ()
    if not isinstance(breakdown_filter, dict) or not isinstance(breakdown_filter.get("breakdowns", []), list | None):
        raise MetricProblem(messages.BREAKDOWN_FILTER_INVALID)
    raw = breakdown_filter.get("breakdowns") or []
    if len(raw) > MAX_BREAKDOWNS:
        raise BreakdownLimitProblem()
    return tuple(_breakdown(item, index) for index, item in enumerate(raw))


def _prior(metric: dict) -> MetricPrior | None:
    """`prior: {proper, mean, stddev}` on the relative lift, as in `stats_config.bayesian.prior`; `proper: false`
    makes this metric's prior flat whatever the experiment's default."""
    raw = metric.get("prior")
    if raw is None:
        return None
    try:
        return MetricPrior(prior=parse_prior(raw, "prior"))
    except StatsConfigError as error:
        raise MetricProblem(error.message) from None


def _percentile(metric: dict, key: str) -> float | None:
    value = metric.get(key)
    if value is None:
        return None
    if not (_is_number(value) and 0 <= value <= 1):
        raise MetricProblem(messages.PERCENTILE_INVALID.format(key=key))
    return float(value)


def _parse_mean(metric: dict) -> MeanMetric:
    source = _parse_source(metric["source"], "source", SOURCE_KINDS)
    lower = _percentile(metric, "lower_bound_percentile")
    upper = _percentile(metric, "upper_bound_percentile")
    if lower is not None and upper is not None and lower >= upper:
        raise MetricProblem(messages.PERCENTILES_OUT_OF_ORDER)
    ignore_zeros = metric.get("ignore_zeros")
    if not isinstance(ignore_zeros, bool | None):
        raise MetricProblem(messages.IGNORE_ZEROS_INVALID)
    winsorization = None
    if lower is not None or upper is not None:
        winsorization = Winsorization(lower=lower, upper=upper, ignore_zeros=bool(ignore_zeros))
    return MeanMetric(source=source, winsorization=winsorization, threshold=metric.get("threshold"))


def _parse_quantile(metric: dict) -> QuantileMetric:
    source = _parse_source(metric["source"], "source", SOURCE_KINDS)
    quantile = metric["quantile"]
    if not (_is_number(quantile) and 0 < quantile < 1):
        raise MetricProblem(messages.QUANTILE_INVALID)
    quantile_type = metric.get("quantile_type")
    if quantile_type not in (None, *QUANTILE_TYPES):
        raise MetricProblem(messages.QUANTILE_TYPE_INVALID)
    if quantile_type == "event" and source.math not in MATH_TYPES_NEEDING_PROPERTY:
        raise MetricProblem(messages.EVENT_QUANTILE_NEEDS_VALUE)
    ignore_zeros = metric.get("ignore_zeros")
    if not isinstance(ignore_zeros, bool | None):
        raise MetricProblem(messages.IGNORE_ZEROS_INVALID)
    return QuantileMetric(
        source=source, quantile=float(quantile), quantile_type=quantile_type or "unit", ignore_zeros=bool(ignore_zeros)
    )


def _parse_funnel(metric: dict) -> FunnelMetric:
    series = metric["series"]
    if not isinstance(series, list):
        raise MetricProblem(messages.SERIES_NOT_LIST)
    if not series:
        raise MetricProblem(messages.FUNNEL_WITHOUT_STEPS)
    steps = tuple(_parse_source(step, f"series[{index}]", FUNNEL_STEP_KINDS) for index, step in enumerate(series))
    order = metric.get("funnel_order_type")
    if order not in (None, *FUNNEL_ORDER_TYPES):
        raise MetricProblem(messages.FUNNEL_ORDER_TYPE_INVALID)
    return FunnelMetric(steps=steps, order=order or "ordered")


def _parse_ratio(metric: dict) -> RatioMetric:
    return RatioMetric(
        numerator=_parse_source(metric["numerator"], "numerator", SOURCE_KINDS),
        denominator=_parse_source(metric["denominator"], "denominator", SOURCE_KINDS),
    )


def _parse_retention(metric: dict) -> RetentionMetric:
    start = _parse_source(metric["start_event"], "start_event", SOURCE_KINDS)
    completion = _parse_source(metric["completion_event"], "completion_event", SOURCE_KINDS)
    for key in ("retention_window_start", "retention_window_end"):
        if not (_is_int(metric[key]) and metric[key] >= 0):
            raise MetricProblem(messages.RETENTION_WINDOW_INVALID.format(key=key))
    if metric["retention_window_end"] < metric["retention_window_start"]:
        raise MetricProblem(messages.RETENTION_WINDOW_OUT_OF_ORDER)
    unit = metric["retention_window_unit"]
    if unit not in TIME_UNIT_SECONDS:
        raise MetricProblem(messages.RETENTION_WINDOW_UNIT_INVALID)
    if metric["retention_window_end"] * TIME_UNIT_SECONDS[unit] > MAX_WINDOW_SECONDS:
        raise MetricProblem(messages.WINDOW_TOO_LONG.format(key="retention_window_end", years=MAX_WINDOW_YEARS))
    if metric["start_handling"] not in START_HANDLINGS:
        raise MetricProblem(messages.START_HANDLING_INVALID)
    return RetentionMetric(
        start=start,
        completion=completion,
        window_start=metric["retention_window_start"],
        window_end=metric["retention_window_end"],
        window_unit=unit,
        last_seen=metric["start_handling"] == "last_seen",
    )


METRIC_PARSERS = {
    "mean": _parse_mean,
    "quantile": _parse_quantile,
    "funnel": _parse_funnel,
    "ratio": _parse_ratio,
    "retention": _parse_retention,
}


def parse_metric_definition(metric: object) -> MetricDefinition:
    """The typed definition of a metric; raises MetricProblem naming the first problem."""
    if not isinstance(metric, dict):
        raise MetricProblem(messages.NOT_A_DICT)
    kind = metric.get("kind")
    if kind in LEGACY_METRIC_KINDS:
        raise MetricProblem(messages.LEGACY_KIND.format(kind=kind))
    if kind != METRIC_KIND:
        raise MetricProblem(messages.WRONG_KIND)
    metric_type = metric.get("metric_type")
    if not isinstance(metric_type, str) or metric_type not in METRIC_TYPES:
        raise MetricProblem(messages.WRONG_METRIC_TYPE)
    for key in REQUIRED_KEYS[metric_type]:
        if metric.get(key) is None:
            raise MetricProblem(messages.MISSING_KEY.format(metric_type=metric_type, key=key))
    _check_common_keys(metric)
    conversion_window = _time_window(
        metric.get("conversion_window"), metric.get("conversion_window_unit"), "conversion_window"
    )
    breakdowns = _breakdowns(metric)
    return MetricDefinition(
        metric_type=metric_type,
        definition=METRIC_PARSERS[metric_type](metric),
        conversion_window=conversion_window,
        breakdowns=breakdowns,
        prior=_prior(metric),
    )


def _describe(problem: MetricProblem, index: int | None) -> str:
    if problem.standalone:
        return str(problem)
    if index is None:
        return messages.INVALID_METRIC.format(problem=problem)
    return messages.INVALID_METRIC_AT_INDEX.format(index=index, problem=problem)


def validate_experiment_metric(metric: object, *, index: int | None = None, attr: str | None = None) -> dict:
    """Return `metric` if it parses, else raise DomainError (code invalid_input) naming the problem."""
    try:
        parse_metric_definition(metric)
    except MetricProblem as problem:
        raise DomainError(_describe(problem, index), attr=attr) from None
    return metric


def validate_experiment_metrics(metrics: object, *, attr: str) -> list[dict]:
    """Validate a list of metrics; errors carry `attr` (e.g. "metrics" or "metrics_secondary")."""
    if not isinstance(metrics, list):
        raise DomainError(messages.METRICS_NOT_A_LIST, attr=attr)
    for index, metric in enumerate(metrics):
        validate_experiment_metric(metric, index=index, attr=attr)
    return metrics


def metric_event_names(metric: dict) -> list[str]:
    """The event names of a valid metric's EventsNode sources and funnel steps (null events are "all events")."""
    nodes = [metric.get(key) for key in METRIC_SOURCE_KEYS] + list(metric.get("series") or [])
    return [
        node["event"]
        for node in nodes
        if isinstance(node, dict) and node.get("kind") == "EventsNode" and isinstance(node.get("event"), str)
    ]
