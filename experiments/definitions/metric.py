"""Checks that an experiment metric is a well-formed `ExperimentMetric` (api.md §5.1–§5.2).

Used for saved metric queries and for the `metrics` / `metrics_secondary` of experiments. Errors are
DomainErrors whose message names the metric ("Invalid metric at index 0: ...") and the problem.
"""

from experiments_api.exceptions import DomainError

METRIC_KIND = "ExperimentMetric"
LEGACY_METRIC_KINDS = ("ExperimentTrendsQuery", "ExperimentFunnelsQuery")
METRIC_TYPES = ("mean", "funnel", "ratio", "retention")
SOURCE_KINDS = ("EventsNode", "ActionsNode", "ExperimentDataWarehouseNode")
FUNNEL_STEP_KINDS = ("EventsNode", "ActionsNode")
MATH_TYPES = ("total", "sum", "avg", "min", "max", "unique_session", "dau", "unique_users")
MATH_TYPES_NEEDING_PROPERTY = ("sum", "avg", "min", "max")
TIME_UNITS = ("second", "minute", "hour", "day", "week", "month")
GOALS = ("increase", "decrease")
START_HANDLINGS = ("first_seen", "last_seen")
FUNNEL_ORDER_TYPES = ("ordered", "unordered", "strict")
DATA_WAREHOUSE_FIELDS = ("table_name", "timestamp_field", "events_join_key", "data_warehouse_join_key")
METRIC_UUID_MAX_LENGTH = 255
METRIC_NAME_MAX_LENGTH = 400
# Keys each metric_type must have; sources are checked separately.
REQUIRED_KEYS = {
    "mean": ("source",),
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

METRICS_NOT_A_LIST = "Metrics must be a list"
INVALID_METRIC_AT_INDEX = "Invalid metric at index {index}: {problem}"
INVALID_METRIC = "Invalid metric: {problem}"
NOT_A_DICT = "must be a dict"
LEGACY_KIND = "legacy metric kind '{kind}' is no longer supported for new experiments. Use 'ExperimentMetric' instead."
WRONG_KIND = "metric kind must be 'ExperimentMetric'"
WRONG_METRIC_TYPE = f"metric_type must be one of: {', '.join(METRIC_TYPES)}"
MISSING_KEY = "{metric_type} metrics require '{key}'"
FUNNEL_WITHOUT_STEPS = "funnel metrics require at least one step in 'series'"
UUID_INVALID = f"uuid must be a string of at most {METRIC_UUID_MAX_LENGTH} characters"
NAME_INVALID = f"name must be a string of at most {METRIC_NAME_MAX_LENGTH} characters"
CONVERSION_WINDOW_INVALID = "conversion_window must be an integer of at least 1"
CONVERSION_WINDOW_UNIT_INVALID = f"conversion_window_unit must be one of: {', '.join(TIME_UNITS)}"
GOAL_INVALID = f"goal must be one of: {', '.join(GOALS)}"
BREAKDOWN_FILTER_INVALID = "breakdownFilter must be an object whose 'breakdowns' is a list"
SOURCE_NOT_OBJECT = "{path} must be an object"
SOURCE_KIND_INVALID = "{path}.kind must be one of: {kinds}"
EVENT_INVALID = "{path}.event must be a string or null"
ACTION_ID_INVALID = "{path}.id must be an integer action id"
DATA_WAREHOUSE_FIELD_INVALID = "{path}.{field} must be a non-empty string"
MATH_INVALID = f"{{path}}.math must be one of: {', '.join(MATH_TYPES)}"
MATH_PROPERTY_REQUIRED = "{path}.math_property must be a non-empty string when math is '{math}'"
PROPERTIES_NOT_LIST = "{path}.properties must be a list"
SERIES_NOT_LIST = "series must be a list"
FUNNEL_ORDER_TYPE_INVALID = f"funnel_order_type must be one of: {', '.join(FUNNEL_ORDER_TYPES)}"
PERCENTILE_INVALID = "{key} must be a number between 0 and 100"
PERCENTILES_OUT_OF_ORDER = "lower_bound_percentile must be less than upper_bound_percentile"
IGNORE_ZEROS_INVALID = "ignore_zeros must be a boolean"
RETENTION_WINDOW_INVALID = "{key} must be a non-negative integer"
RETENTION_WINDOW_OUT_OF_ORDER = "retention_window_end must not be before retention_window_start"
RETENTION_WINDOW_UNIT_INVALID = f"retention_window_unit must be one of: {', '.join(TIME_UNITS)}"
START_HANDLING_INVALID = f"start_handling must be one of: {', '.join(START_HANDLINGS)}"


class _MetricProblem(Exception):
    """What is wrong with one metric; the public functions add which metric it is."""


def validate_experiment_metric(metric: object, *, index: int | None = None) -> dict:
    """Return `metric` if it is a valid ExperimentMetric, else raise DomainError (attr None) naming the problem."""
    try:
        return _check_metric(metric)
    except _MetricProblem as problem:
        raise DomainError(_describe(problem, index)) from None


def validate_experiment_metrics(metrics: object, *, attr: str) -> list[dict]:
    """Validate a list of metrics; errors carry `attr` (e.g. "metrics" or "metrics_secondary")."""
    if not isinstance(metrics, list):
        raise DomainError(METRICS_NOT_A_LIST, attr=attr)
    for index, metric in enumerate(metrics):
        try:
            _check_metric(metric)
        except _MetricProblem as problem:
            raise DomainError(_describe(problem, index), attr=attr) from None
    return metrics


def _describe(problem: _MetricProblem, index: int | None) -> str:
    if index is None:
        return INVALID_METRIC.format(problem=problem)
    return INVALID_METRIC_AT_INDEX.format(index=index, problem=problem)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_metric(metric: object) -> dict:
    if not isinstance(metric, dict):
        raise _MetricProblem(NOT_A_DICT)
    kind = metric.get("kind")
    if kind in LEGACY_METRIC_KINDS:
        raise _MetricProblem(LEGACY_KIND.format(kind=kind))
    if kind != METRIC_KIND:
        raise _MetricProblem(WRONG_KIND)
    metric_type = metric.get("metric_type")
    if metric_type not in METRIC_TYPES:
        raise _MetricProblem(WRONG_METRIC_TYPE)
    for key in REQUIRED_KEYS[metric_type]:
        if metric.get(key) is None:
            raise _MetricProblem(MISSING_KEY.format(metric_type=metric_type, key=key))
    _check_common_keys(metric)
    if metric_type == "mean":
        _check_mean(metric)
    elif metric_type == "funnel":
        _check_funnel(metric)
    elif metric_type == "ratio":
        _check_source(metric["numerator"], "numerator", SOURCE_KINDS)
        _check_source(metric["denominator"], "denominator", SOURCE_KINDS)
    else:
        _check_retention(metric)
    return metric


def _check_common_keys(metric: dict) -> None:
    uuid = metric.get("uuid")
    if uuid is not None and not (isinstance(uuid, str) and len(uuid) <= METRIC_UUID_MAX_LENGTH):
        raise _MetricProblem(UUID_INVALID)
    name = metric.get("name")
    if name is not None and not (isinstance(name, str) and len(name) <= METRIC_NAME_MAX_LENGTH):
        raise _MetricProblem(NAME_INVALID)
    window = metric.get("conversion_window")
    if window is not None and not (_is_int(window) and window >= 1):
        raise _MetricProblem(CONVERSION_WINDOW_INVALID)
    if metric.get("conversion_window_unit") not in (None, *TIME_UNITS):
        raise _MetricProblem(CONVERSION_WINDOW_UNIT_INVALID)
    if metric.get("goal") not in (None, *GOALS):
        raise _MetricProblem(GOAL_INVALID)
    breakdown_filter = metric.get("breakdownFilter")
    if breakdown_filter is not None and not (
        isinstance(breakdown_filter, dict) and isinstance(breakdown_filter.get("breakdowns", []), list | None)
    ):
        raise _MetricProblem(BREAKDOWN_FILTER_INVALID)


def _check_source(source: object, path: str, kinds: tuple[str, ...]) -> None:
    """An EventsNode (event name or null for all events), ActionsNode (action id) or data warehouse node."""
    if not isinstance(source, dict):
        raise _MetricProblem(SOURCE_NOT_OBJECT.format(path=path))
    kind = source.get("kind")
    if kind not in kinds:
        raise _MetricProblem(SOURCE_KIND_INVALID.format(path=path, kinds=", ".join(kinds)))
    if kind == "EventsNode" and not isinstance(source.get("event"), str | None):
        raise _MetricProblem(EVENT_INVALID.format(path=path))
    if kind == "ActionsNode" and not _is_int(source.get("id")):
        raise _MetricProblem(ACTION_ID_INVALID.format(path=path))
    if kind == "ExperimentDataWarehouseNode":
        for field in DATA_WAREHOUSE_FIELDS:
            value = source.get(field)
            if not (isinstance(value, str) and value):
                raise _MetricProblem(DATA_WAREHOUSE_FIELD_INVALID.format(path=path, field=field))
    math = source.get("math")
    if math is not None and math not in MATH_TYPES:
        raise _MetricProblem(MATH_INVALID.format(path=path))
    if math in MATH_TYPES_NEEDING_PROPERTY:
        math_property = source.get("math_property")
        if not (isinstance(math_property, str) and math_property):
            raise _MetricProblem(MATH_PROPERTY_REQUIRED.format(path=path, math=math))
    if not isinstance(source.get("properties", []), list | None):
        raise _MetricProblem(PROPERTIES_NOT_LIST.format(path=path))


def _check_mean(metric: dict) -> None:
    _check_source(metric["source"], "source", SOURCE_KINDS)
    bounds = {}
    for key in ("lower_bound_percentile", "upper_bound_percentile"):
        value = metric.get(key)
        if value is not None and not (_is_number(value) and 0 <= value <= 100):
            raise _MetricProblem(PERCENTILE_INVALID.format(key=key))
        bounds[key] = value
    lower, upper = bounds["lower_bound_percentile"], bounds["upper_bound_percentile"]
    if lower is not None and upper is not None and lower >= upper:
        raise _MetricProblem(PERCENTILES_OUT_OF_ORDER)
    if not isinstance(metric.get("ignore_zeros", False), bool | None):
        raise _MetricProblem(IGNORE_ZEROS_INVALID)


def _check_funnel(metric: dict) -> None:
    series = metric["series"]
    if not isinstance(series, list):
        raise _MetricProblem(SERIES_NOT_LIST)
    if not series:
        raise _MetricProblem(FUNNEL_WITHOUT_STEPS)
    for step, source in enumerate(series):
        _check_source(source, f"series[{step}]", FUNNEL_STEP_KINDS)
    if metric.get("funnel_order_type") not in (None, *FUNNEL_ORDER_TYPES):
        raise _MetricProblem(FUNNEL_ORDER_TYPE_INVALID)


def _check_retention(metric: dict) -> None:
    _check_source(metric["start_event"], "start_event", SOURCE_KINDS)
    _check_source(metric["completion_event"], "completion_event", SOURCE_KINDS)
    for key in ("retention_window_start", "retention_window_end"):
        if not (_is_int(metric[key]) and metric[key] >= 0):
            raise _MetricProblem(RETENTION_WINDOW_INVALID.format(key=key))
    if metric["retention_window_end"] < metric["retention_window_start"]:
        raise _MetricProblem(RETENTION_WINDOW_OUT_OF_ORDER)
    if metric["retention_window_unit"] not in TIME_UNITS:
        raise _MetricProblem(RETENTION_WINDOW_UNIT_INVALID)
    if metric["start_handling"] not in START_HANDLINGS:
        raise _MetricProblem(START_HANDLING_INVALID)


METRIC_SOURCE_KEYS = ("source", "numerator", "denominator", "start_event", "completion_event")


def metric_event_names(metric: dict) -> list[str]:
    """The event names of a valid metric's EventsNode sources and funnel steps (null events are "all events")."""
    nodes = [metric.get(key) for key in METRIC_SOURCE_KEYS] + list(metric.get("series") or [])
    return [
        node["event"]
        for node in nodes
        if isinstance(node, dict) and node.get("kind") == "EventsNode" and isinstance(node.get("event"), str)
    ]
