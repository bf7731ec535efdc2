"""What the SQL engine computes: a metric's parsed definition, checked against the options this engine supports.

The definition comes from the one metric parser (`experiments.definitions.metric`); here an option that parses but
cannot be computed yet (an action source, a strict funnel, a group filter, ...) fails with a 400 that names the
option before any query runs.
"""

import dataclasses
import datetime as dt
from dataclasses import dataclass

from experiments import messages
from experiments.definitions.metric import (
    TIME_UNIT_SECONDS,
    Breakdown,
    EventSource,
    FunnelMetric,
    MeanMetric,
    MetricProblem,
    PropertyFilter,
    QuantileMetric,
    RatioMetric,
    RetentionMetric,
    Winsorization,
    parse_metric_definition,
    parse_property_filters,
)
from experiments.stats.config import MetricPrior, StatsConfig, StatsConfigError
from experiments_api.exceptions import DomainError

__all__ = [
    "TIME_UNIT_SECONDS",
    "Breakdown",
    "EventSource",
    "FunnelMetric",
    "MeanMetric",
    "MetricSpec",
    "PropertyFilter",
    "QuantileMetric",
    "RatioMetric",
    "RetentionMetric",
    "Winsorization",
    "computable_property_filters",
    "parse_metric",
]

MEAN_MATHS = ("total", "sum", "avg", "min", "max", "unique_session", "dau")
PROPERTY_FILTER_TYPES = ("event", "person", "cohort")
COHORT_OPERATORS = ("in", "not_in")
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
CUPED_METRIC_TYPES = ("mean", "funnel", "ratio")
BREAKDOWN_TYPES = ("event", "person")


def invalid(problem: MetricProblem | str) -> DomainError:
    detail = str(problem) if getattr(problem, "standalone", False) else messages.INVALID_METRIC.format(problem=problem)
    return DomainError(detail, code="invalid_metric", attr="metric")


def unsupported(option: str) -> DomainError:
    return DomainError(messages.UNSUPPORTED_METRIC.format(option=option), code="unsupported_metric", attr="metric")


@dataclass(frozen=True)
class MetricSpec:
    metric_type: str
    definition: MeanMetric | QuantileMetric | FunnelMetric | RatioMetric | RetentionMetric
    conversion_window: dt.timedelta | None
    cuped_lookback: dt.timedelta | None  # None when CUPED is off or the metric type has no covariate
    breakdowns: tuple[Breakdown, ...] = ()
    prior: MetricPrior | None = None  # the metric's own Bayesian prior (None: the experiment's)


def _cohort_filter(property_filter: PropertyFilter, what: str) -> PropertyFilter:
    """`{"type": "cohort", "key": "id", "value": <cohort id>}`, operator `in` (the default) or `not_in`."""
    value = property_filter.values[0] if property_filter.values else None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise invalid(f"a cohort filter in {what} needs a cohort id as its value")
    operator = "in" if property_filter.operator == "exact" else property_filter.operator
    if operator not in COHORT_OPERATORS:
        raise invalid(f"a cohort filter in {what} takes the operator 'in' or 'not_in'")
    return PropertyFilter(key="id", operator=operator, values=(int(value),), type="cohort")


def _check_filters(filters: tuple[PropertyFilter, ...], what: str) -> tuple[PropertyFilter, ...]:
    """Event, person (the person's current properties) and cohort (membership) filters compute; others not."""
    checked = []
    for property_filter in filters:
        if property_filter.type not in PROPERTY_FILTER_TYPES:
            raise unsupported(f"property filters of type '{property_filter.type}' (in {what})")
        if property_filter.type == "cohort":
            checked.append(_cohort_filter(property_filter, what))
            continue
        if property_filter.operator not in PROPERTY_OPERATORS:
            raise unsupported(f"property filter operator '{property_filter.operator}'")
        checked.append(property_filter)
    return tuple(checked)


def computable_property_filters(raw_filters: object, what: str) -> tuple[PropertyFilter, ...]:
    """Parse property filters outside a metric (exposure, test accounts) and refuse those the engine cannot apply."""
    try:
        filters = parse_property_filters(raw_filters, what)
    except MetricProblem as problem:
        raise invalid(str(problem)) from None
    return _check_filters(filters, what)


def _computable_source(source: EventSource, what: str, *, allow_math: bool = True) -> EventSource:
    if source.kind != "EventsNode":
        raise unsupported(f"{source.kind} sources")
    if source.math_property_type not in (None, "event_properties"):
        raise unsupported(f"math_property_type '{source.math_property_type}'")
    if allow_math and source.math not in MEAN_MATHS:
        raise unsupported(f"math '{source.math}'")
    source = dataclasses.replace(source, properties=_check_filters(source.properties, f"{what}.properties"))
    return source if allow_math else dataclasses.replace(source, math="total", math_property=None)


def _computable_definition(definition):
    if isinstance(definition, MeanMetric):
        if definition.threshold is not None:
            raise unsupported("a mean metric threshold")
        return dataclasses.replace(definition, source=_computable_source(definition.source, "source"))
    if isinstance(definition, QuantileMetric):
        return dataclasses.replace(definition, source=_computable_source(definition.source, "source"))
    if isinstance(definition, FunnelMetric):
        if definition.order not in FUNNEL_ORDERS:
            raise unsupported(f"funnel_order_type '{definition.order}'")
        steps = tuple(
            _computable_source(step, f"series[{index}]", allow_math=False)
            for index, step in enumerate(definition.steps)
        )
        return dataclasses.replace(definition, steps=steps)
    if isinstance(definition, RatioMetric):
        return RatioMetric(
            numerator=_computable_source(definition.numerator, "numerator"),
            denominator=_computable_source(definition.denominator, "denominator"),
        )
    if definition.window_unit not in RETENTION_UNITS:
        raise unsupported(f"retention_window_unit '{definition.window_unit}'")
    return dataclasses.replace(
        definition,
        start=_computable_source(definition.start, "start_event", allow_math=False),
        completion=_computable_source(definition.completion, "completion_event", allow_math=False),
    )


def _cuped_lookback(stats_config, metric_type: str, definition) -> dt.timedelta | None:
    """The CUPED pre-exposure window, for mean, ordered-funnel and ratio metrics when `stats_config` turns CUPED on."""
    try:
        config = StatsConfig.from_dict(stats_config)
    except StatsConfigError as error:
        raise DomainError(error.message, attr="stats_config") from None
    if not config.cuped or metric_type not in CUPED_METRIC_TYPES:
        return None
    if isinstance(definition, FunnelMetric) and not definition.ordered:
        return None
    return dt.timedelta(days=config.cuped_lookback_days)


def parse_metric(metric, *, stats_config) -> MetricSpec:
    """The computable spec of a metric: 400 `invalid_metric` when it does not parse, `unsupported_metric` when it
    uses an option this engine does not compute."""
    try:
        parsed = parse_metric_definition(metric)
    except MetricProblem as problem:
        raise invalid(problem) from None
    if parsed.breakdowns and parsed.metric_type == "quantile":
        raise unsupported("breakdowns on quantile metrics")
    for breakdown in parsed.breakdowns:
        if breakdown.type not in BREAKDOWN_TYPES:
            raise unsupported(f"breakdowns of type '{breakdown.type}'")
    definition = _computable_definition(parsed.definition)
    return MetricSpec(
        metric_type=parsed.metric_type,
        definition=definition,
        conversion_window=parsed.conversion_window,
        cuped_lookback=_cuped_lookback(stats_config, parsed.metric_type, definition),
        breakdowns=parsed.breakdowns,
        prior=parsed.prior,
    )
