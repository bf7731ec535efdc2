"""experiments.definitions.metric: which ExperimentMetric objects pass, and the message each mistake gives."""

import copy

import pytest

from experiments import messages
from experiments.definitions import metric as mv
from experiments.definitions.metric import validate_experiment_metric, validate_experiment_metrics
from experiments.stats import GaussianPrior, MetricPrior
from experiments_api.exceptions import DomainError

EVENT = {"kind": "EventsNode", "event": "purchase"}
ACTION = {"kind": "ActionsNode", "id": 12}
WAREHOUSE = {
    "kind": "ExperimentDataWarehouseNode",
    "table_name": "payments",
    "timestamp_field": "paid_at",
    "events_join_key": "distinct_id",
    "data_warehouse_join_key": "customer_id",
    "math": "sum",
    "math_property": "amount",
}
MEAN = {"kind": "ExperimentMetric", "metric_type": "mean", "uuid": "m-1", "source": EVENT}
FUNNEL = {"kind": "ExperimentMetric", "metric_type": "funnel", "series": [EVENT, ACTION]}
RATIO = {"kind": "ExperimentMetric", "metric_type": "ratio", "numerator": EVENT, "denominator": WAREHOUSE}
RETENTION = {
    "kind": "ExperimentMetric",
    "metric_type": "retention",
    "start_event": EVENT,
    "completion_event": ACTION,
    "retention_window_start": 0,
    "retention_window_end": 7,
    "retention_window_unit": "day",
    "start_handling": "first_seen",
}


def with_(metric: dict, **changes) -> dict:
    return {**copy.deepcopy(metric), **changes}


VALID = [
    MEAN,
    with_(MEAN, source={"kind": "EventsNode", "event": None, "math": "dau", "properties": []}),
    with_(MEAN, source={**EVENT, "math": "avg", "math_property": "amount"}),
    with_(MEAN, source={**ACTION, "math": "unique_users"}),
    with_(MEAN, source=WAREHOUSE),
    with_(MEAN, lower_bound_percentile=0.05, upper_bound_percentile=0.955, ignore_zeros=True),
    with_(
        MEAN,
        name="Revenue",
        conversion_window=14,
        conversion_window_unit="day",
        goal="decrease",
        breakdownFilter={"breakdowns": [{"property": "$browser"}]},
        fingerprint="abc",
        isSharedMetric=True,
    ),
    with_(MEAN, prior={"proper": True, "mean": 0.02, "stddev": 0.1}),
    with_(MEAN, prior={"proper": False}),
    with_(MEAN, prior=None),
    FUNNEL,
    with_(FUNNEL, funnel_order_type="unordered"),
    RATIO,
    RETENTION,
    with_(RETENTION, retention_window_start=3, retention_window_end=3, start_handling="last_seen"),
]


@pytest.mark.parametrize("metric", VALID)
def test_valid_metrics_are_returned_unchanged(metric):
    original = copy.deepcopy(metric)

    assert validate_experiment_metric(metric) is metric
    assert metric == original


INVALID = [
    (["not", "a", "dict"], messages.NOT_A_DICT),
    (None, messages.NOT_A_DICT),
    (
        {"kind": "ExperimentFunnelsQuery", "funnels_query": {}},
        messages.LEGACY_KIND.format(kind="ExperimentFunnelsQuery"),
    ),
    (with_(MEAN, kind="ExperimentTrendsQuery"), messages.LEGACY_KIND.format(kind="ExperimentTrendsQuery")),
    (with_(MEAN, kind=None), messages.WRONG_KIND),
    (with_(MEAN, kind="EventsNode"), messages.WRONG_KIND),
    (with_(MEAN, metric_type=None), messages.WRONG_METRIC_TYPE),
    (with_(MEAN, metric_type="count"), messages.WRONG_METRIC_TYPE),
    (with_(MEAN, source=None), messages.MISSING_KEY.format(metric_type="mean", key="source")),
    (
        {"kind": "ExperimentMetric", "metric_type": "funnel"},
        messages.MISSING_KEY.format(metric_type="funnel", key="series"),
    ),
    (with_(RATIO, denominator=None), messages.MISSING_KEY.format(metric_type="ratio", key="denominator")),
    (
        {key: value for key, value in RETENTION.items() if key != "start_handling"},
        messages.MISSING_KEY.format(metric_type="retention", key="start_handling"),
    ),
    # common keys
    (with_(MEAN, uuid=123), messages.UUID_INVALID),
    (with_(MEAN, uuid="u" * 256), messages.UUID_INVALID),
    (with_(MEAN, name=["n"]), messages.NAME_INVALID),
    (with_(MEAN, name="n" * 401), messages.NAME_INVALID),
    (with_(MEAN, conversion_window=0), messages.CONVERSION_WINDOW_INVALID),
    (with_(MEAN, conversion_window="7"), messages.CONVERSION_WINDOW_INVALID),
    (with_(MEAN, conversion_window=1.5), messages.CONVERSION_WINDOW_INVALID),
    (with_(MEAN, conversion_window=True), messages.CONVERSION_WINDOW_INVALID),
    (with_(MEAN, conversion_window_unit="year"), messages.CONVERSION_WINDOW_UNIT_INVALID),
    (with_(MEAN, goal="up"), messages.GOAL_INVALID),
    (with_(MEAN, breakdownFilter=["$browser"]), messages.BREAKDOWN_FILTER_INVALID),
    (with_(MEAN, breakdownFilter={"breakdowns": "$browser"}), messages.BREAKDOWN_FILTER_INVALID),
    (with_(MEAN, breakdownFilter={"breakdowns": ["$browser"]}), messages.BREAKDOWN_NOT_OBJECT.format(index=0)),
    (
        with_(MEAN, breakdownFilter={"breakdowns": [{"property": "$os"}, {"property": ""}]}),
        messages.BREAKDOWN_PROPERTY_INVALID.format(index=1),
    ),
    (
        with_(MEAN, breakdownFilter={"breakdowns": [{"type": "event"}]}),
        messages.BREAKDOWN_PROPERTY_INVALID.format(index=0),
    ),
    (
        with_(MEAN, breakdownFilter={"breakdowns": [{"property": "$os", "type": "cohort"}]}),
        messages.BREAKDOWN_TYPE_INVALID.format(index=0, types="event, person, group, session"),
    ),
    # sources
    (with_(MEAN, source=["EventsNode"]), messages.SOURCE_NOT_OBJECT.format(path="source")),
    (
        with_(MEAN, source={"kind": "HogQLQuery"}),
        messages.SOURCE_KIND_INVALID.format(path="source", kinds=", ".join(mv.SOURCE_KINDS)),
    ),
    (
        with_(MEAN, source={"event": "purchase"}),
        messages.SOURCE_KIND_INVALID.format(path="source", kinds=", ".join(mv.SOURCE_KINDS)),
    ),
    (with_(MEAN, source={"kind": "EventsNode", "event": 5}), messages.EVENT_INVALID.format(path="source")),
    (with_(MEAN, source={"kind": "ActionsNode"}), messages.ACTION_ID_INVALID.format(path="source")),
    (with_(MEAN, source={"kind": "ActionsNode", "id": "12"}), messages.ACTION_ID_INVALID.format(path="source")),
    (
        with_(MEAN, source={**WAREHOUSE, "table_name": ""}),
        messages.DATA_WAREHOUSE_FIELD_INVALID.format(path="source", field="table_name"),
    ),
    (
        with_(MEAN, source={key: value for key, value in WAREHOUSE.items() if key != "events_join_key"}),
        messages.DATA_WAREHOUSE_FIELD_INVALID.format(path="source", field="events_join_key"),
    ),
    (with_(MEAN, source={**EVENT, "math": "median"}), messages.MATH_INVALID.format(path="source")),
    (with_(MEAN, source={**EVENT, "math": "max"}), messages.MATH_PROPERTY_REQUIRED.format(path="source", math="max")),
    (
        with_(MEAN, source={**EVENT, "math": "min", "math_property": ""}),
        messages.MATH_PROPERTY_REQUIRED.format(path="source", math="min"),
    ),
    (with_(MEAN, source={**EVENT, "properties": {"a": 1}}), messages.PROPERTIES_NOT_LIST.format(path="source")),
    # mean outlier handling
    (with_(MEAN, lower_bound_percentile=-1), messages.PERCENTILE_INVALID.format(key="lower_bound_percentile")),
    (with_(MEAN, upper_bound_percentile=1.01), messages.PERCENTILE_INVALID.format(key="upper_bound_percentile")),
    (with_(MEAN, upper_bound_percentile="95"), messages.PERCENTILE_INVALID.format(key="upper_bound_percentile")),
    (with_(MEAN, lower_bound_percentile=0.9, upper_bound_percentile=0.1), messages.PERCENTILES_OUT_OF_ORDER),
    (with_(MEAN, ignore_zeros="yes"), messages.IGNORE_ZEROS_INVALID),
    # a metric's own prior
    (with_(MEAN, prior=[0, 0.3]), messages.PRIOR_NOT_OBJECT.format(path="prior")),
    (with_(MEAN, prior={"proper": 1}), messages.PRIOR_PROPER_NOT_BOOLEAN.format(path="prior")),
    (with_(MEAN, prior={"mean": None}), messages.PRIOR_MEAN_INVALID.format(path="prior")),
    (with_(MEAN, prior={"stddev": "0.3"}), messages.PRIOR_STDDEV_INVALID.format(path="prior")),
    (with_(FUNNEL, prior={"stddev": 0}), messages.PRIOR_STDDEV_INVALID.format(path="prior")),
    # funnel
    (with_(FUNNEL, series=[]), messages.FUNNEL_WITHOUT_STEPS),
    (with_(FUNNEL, series={"0": EVENT}), messages.SERIES_NOT_LIST),
    (
        with_(FUNNEL, series=[EVENT, WAREHOUSE]),
        messages.SOURCE_KIND_INVALID.format(path="series[1]", kinds=", ".join(mv.FUNNEL_STEP_KINDS)),
    ),
    (with_(FUNNEL, series=[EVENT, "signup"]), messages.SOURCE_NOT_OBJECT.format(path="series[1]")),
    (with_(FUNNEL, funnel_order_type="random"), messages.FUNNEL_ORDER_TYPE_INVALID),
    # ratio
    (with_(RATIO, numerator={"kind": "ActionsNode", "id": None}), messages.ACTION_ID_INVALID.format(path="numerator")),
    (with_(RATIO, denominator="purchase"), messages.SOURCE_NOT_OBJECT.format(path="denominator")),
    # retention
    (
        with_(RETENTION, start_event={"kind": "Nope"}),
        messages.SOURCE_KIND_INVALID.format(path="start_event", kinds=", ".join(mv.SOURCE_KINDS)),
    ),
    (with_(RETENTION, completion_event=[]), messages.SOURCE_NOT_OBJECT.format(path="completion_event")),
    (
        with_(RETENTION, retention_window_start="0"),
        messages.RETENTION_WINDOW_INVALID.format(key="retention_window_start"),
    ),
    (with_(RETENTION, retention_window_end=-1), messages.RETENTION_WINDOW_INVALID.format(key="retention_window_end")),
    (with_(RETENTION, retention_window_start=8, retention_window_end=7), messages.RETENTION_WINDOW_OUT_OF_ORDER),
    (with_(RETENTION, retention_window_unit="fortnight"), messages.RETENTION_WINDOW_UNIT_INVALID),
    (with_(RETENTION, start_handling="any_time"), messages.START_HANDLING_INVALID),
]


@pytest.mark.parametrize(("metric", "problem"), INVALID)
def test_an_invalid_metric_names_its_index_and_the_problem(metric, problem):
    with pytest.raises(DomainError) as error:
        validate_experiment_metric(metric, index=3)

    assert error.value.message == f"Invalid metric at index 3: {problem}"
    assert (error.value.code, error.value.attr) == ("invalid_input", None)


def test_without_an_index_the_message_says_invalid_metric():
    with pytest.raises(DomainError) as error:
        validate_experiment_metric(with_(MEAN, goal="up"))

    assert error.value.message == f"Invalid metric: {messages.GOAL_INVALID}"


def test_the_examples_of_the_spec_read_as_specified():
    with pytest.raises(DomainError) as not_a_dict:
        validate_experiment_metric("x", index=0)
    with pytest.raises(DomainError) as wrong_kind:
        validate_experiment_metric({"kind": "Other"}, index=0)

    assert not_a_dict.value.message == "Invalid metric at index 0: must be a dict"
    assert wrong_kind.value.message == "Invalid metric at index 0: metric kind must be 'ExperimentMetric'"


def test_a_list_of_valid_metrics_is_returned():
    metrics = [MEAN, FUNNEL, RATIO, RETENTION]

    assert validate_experiment_metrics(metrics, attr="metrics") is metrics
    assert validate_experiment_metrics([], attr="metrics") == []


@pytest.mark.parametrize("metrics", [None, {"0": MEAN}, "metrics", MEAN])
def test_metrics_must_be_a_list(metrics):
    with pytest.raises(DomainError) as error:
        validate_experiment_metrics(metrics, attr="metrics_secondary")

    assert (error.value.message, error.value.attr) == ("Metrics must be a list", "metrics_secondary")


def test_the_first_invalid_metric_of_a_list_is_reported_with_its_index_and_the_attr():
    metrics = [MEAN, FUNNEL, with_(FUNNEL, series=[]), "junk"]

    with pytest.raises(DomainError) as error:
        validate_experiment_metrics(metrics, attr="metrics")

    assert error.value.message == f"Invalid metric at index 2: {messages.FUNNEL_WITHOUT_STEPS}"
    assert error.value.attr == "metrics"


@pytest.mark.parametrize(
    ("raw", "prior"),
    [
        (None, None),
        ({"mean": 0.02, "stddev": 0.1}, MetricPrior(GaussianPrior(mean=0.02, stddev=0.1))),
        ({}, MetricPrior(GaussianPrior(mean=0.0, stddev=0.3))),
        ({"proper": False, "stddev": 0.1}, MetricPrior(None)),
    ],
    ids=["absent", "proper", "defaults", "flat"],
)
def test_a_metric_prior_is_parsed_once_into_the_definition(raw, prior):
    assert mv.parse_metric_definition(with_(MEAN, prior=raw)).prior == prior
