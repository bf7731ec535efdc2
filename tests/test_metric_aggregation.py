"""SQL metric aggregation (experiments/metrics) against a pure-Python computation over the same events.

The engine computes every day of a timeseries from one scan; the reference recomputes each day from scratch, as
one query per day would. Small hand-checked cases pin down the rules the comparison relies on.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from experiments import messages
from experiments.metrics import daily_exposures, daily_variant_statistics
from experiments.metrics.days import day_end, days_from, local_day
from experiments.results.current import metric_results_as_of
from experiments.stats import compute_metric_result
from experiments.stats.ratio_cuped import RatioCupedStatistic, ratio_cuped_effect
from experiments.stats.results import COVARIATE_FIELDS, RATIO_DENOMINATOR_COVARIATE_FIELDS, RATIO_FIELDS
from experiments_api.exceptions import DomainError
from tests.event_stores import store_raw_events
from tests.factories import ExperimentFactory, FeatureFlagFactory, HoldoutFactory, ProjectFactory
from tests.metric_reference import RawEvent, Setup, reference_statistics, sample_events

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_store")]

NEW_YORK = "America/New_York"
# 03:00 UTC is 22:00 the previous evening in New York: local days and UTC days differ.
START = dt.datetime(2025, 3, 6, 3, 0, tzinfo=dt.UTC)
FLAG_KEY = "checkout-flow"
TEST_ACCOUNT_FILTERS = [{"key": "$host", "operator": "is_not", "value": ["localhost"], "type": "event"}]
BASE_FIELDS = ("number_of_samples", "sum", "sum_squares")


def events_node(event, **extra) -> dict:
    return {"kind": "EventsNode", "event": event, **extra}


def mean(source: dict, **extra) -> dict:
    return {"kind": "ExperimentMetric", "metric_type": "mean", "source": source, **extra}


def funnel(*steps, **extra) -> dict:
    return {"kind": "ExperimentMetric", "metric_type": "funnel", "series": list(steps), **extra}


def ratio(numerator: dict, denominator: dict, **extra) -> dict:
    return {
        "kind": "ExperimentMetric",
        "metric_type": "ratio",
        "numerator": numerator,
        "denominator": denominator,
        **extra,
    }


def retention(**extra) -> dict:
    return {
        "kind": "ExperimentMetric",
        "metric_type": "retention",
        "start_event": events_node("$pageview"),
        "completion_event": events_node("purchase"),
        "retention_window_start": 1,
        "retention_window_end": 3,
        "retention_window_unit": "day",
        "start_handling": "first_seen",
        **extra,
    }


def store(project, events: list[RawEvent]) -> None:
    store_raw_events(project, events)


def make_experiment(*, timezone=NEW_YORK, start=START, end=None, exposure_criteria=None, stats_config=None, **extra):
    project = ProjectFactory(timezone=timezone, test_account_filters=TEST_ACCOUNT_FILTERS)
    flag = FeatureFlagFactory(project=project, key=FLAG_KEY)
    return ExperimentFactory(
        project=project,
        feature_flag=flag,
        start_date=start,
        end_date=end,
        exposure_criteria=exposure_criteria,
        stats_config=stats_config,
        **extra,
    )


def day_boundaries(experiment, days: int) -> list[dt.datetime]:
    tz = experiment.project.tzinfo
    first = local_day(experiment.start_date, tz)
    return [day_end(day, tz) for day in days_from(first, first + dt.timedelta(days=days - 1))]


def by_variant(rows: list[dict]) -> dict[str, dict]:
    return {row["key"]: row for row in rows}


def daily_rows(experiment, metric: dict, days: int) -> list[dict[str, dict]]:
    statistics = daily_variant_statistics(
        experiment=experiment, metric=metric, boundaries=day_boundaries(experiment, days)
    )
    return [by_variant(rows) for rows in statistics.variants]


def engine_fields(row: dict) -> dict:
    """The engine's row flattened to the reference's field names."""
    names = (*BASE_FIELDS, *RATIO_FIELDS, *COVARIATE_FIELDS, *RATIO_DENOMINATOR_COVARIATE_FIELDS)
    flat = {name: row[name] for name in names if name in row}
    for index, count in enumerate(row.get("step_counts", []), start=1):
        flat[f"step_{index}"] = count
    return flat


def assert_matches_reference(experiment, metric, events, setup, days: int = 8) -> None:
    engine = daily_rows(experiment, metric, days)
    for day, query_to in enumerate(day_boundaries(experiment, days)):
        expected = reference_statistics(events, setup, metric, query_to)
        for variant in setup.variants:
            actual = engine_fields(engine[day][variant])
            wanted = {name: value for name, value in expected[variant].items() if name in actual}
            assert actual == pytest.approx(wanted, rel=1e-9, abs=1e-9), f"day {day}, {variant}"
        assert set(engine[day]) == set(setup.variants)


CASES = {
    "count": (mean(events_node("purchase")), {}),
    "sum with a conversion window": (
        mean(
            events_node("purchase", math="sum", math_property="amount"),
            conversion_window=36,
            conversion_window_unit="hour",
        ),
        {},
    ),
    "avg of a filtered source": (
        mean(
            events_node(
                "purchase",
                math="avg",
                math_property="amount",
                properties=[{"key": "plan", "operator": "icontains", "value": "PRO", "type": "event"}],
            )
        ),
        {},
    ),
    "min": (mean(events_node("purchase", math="min", math_property="amount")), {}),
    "max with a numeric filter": (
        mean(
            events_node(
                "purchase",
                math="max",
                math_property="amount",
                properties=[{"key": "amount", "operator": "lt", "value": 100}],
            )
        ),
        {},
    ),
    "unique sessions of all events": (mean(events_node(None, math="unique_session")), {}),
    "dau": (mean(events_node("purchase", math="dau")), {}),
    "winsorized sum": (
        mean(
            events_node("purchase", math="sum", math_property="amount"),
            lower_bound_percentile=0.1,
            upper_bound_percentile=0.9,
        ),
        {},
    ),
    "upper bound ignoring zeros": (
        mean(
            events_node("purchase", math="sum", math_property="amount"), upper_bound_percentile=0.8, ignore_zeros=True
        ),
        {},
    ),
    "cuped count": (mean(events_node("purchase")), {"cuped": 14}),
    "cuped winsorized sum": (
        mean(events_node("purchase", math="sum", math_property="amount"), upper_bound_percentile=0.95),
        {"cuped": 7},
    ),
    "first seen variant": (mean(events_node("$pageview")), {"handling": "first_seen"}),
    "without test account filtering": (mean(events_node("$pageview")), {"filter_test_accounts": False}),
    "stopped experiment": (mean(events_node("purchase")), {"end": START + dt.timedelta(days=3, hours=5)}),
    "ordered funnel": (funnel(events_node("$pageview"), events_node("purchase")), {}),
    "ordered funnel with a window": (
        funnel(
            events_node("$pageview"),
            events_node("purchase"),
            events_node("$pageview"),
            conversion_window=2,
            conversion_window_unit="day",
        ),
        {},
    ),
    "unordered funnel": (
        funnel(
            events_node("purchase", properties=[{"key": "plan", "value": "free"}]),
            events_node("$pageview"),
            funnel_order_type="unordered",
        ),
        {},
    ),
    "cuped funnel": (funnel(events_node("$pageview"), events_node("purchase")), {"cuped": 14}),
    "ratio": (
        ratio(events_node("purchase", math="sum", math_property="amount"), events_node("$pageview")),
        {},
    ),
    "ratio of distinct counts": (
        ratio(events_node("purchase", math="unique_session"), events_node(None, math="dau")),
        {},
    ),
    "cuped ratio": (
        ratio(events_node("purchase", math="sum", math_property="amount"), events_node("$pageview")),
        {"cuped": 14},
    ),
    "cuped ratio of an average and distinct sessions, windowed": (
        ratio(
            events_node("purchase", math="avg", math_property="amount"),
            events_node(None, math="unique_session"),
            conversion_window=2,
            conversion_window_unit="day",
        ),
        {"cuped": 3, "handling": "first_seen"},
    ),
    "retention, days, first seen": (retention(), {}),
    "retention, days, last seen, window": (
        retention(start_handling="last_seen", conversion_window=3, conversion_window_unit="day"),
        {},
    ),
    "retention, hours": (
        retention(retention_window_start=0, retention_window_end=30, retention_window_unit="hour"),
        {},
    ),
    "retention, same event": (
        retention(
            start_event=events_node("$pageview"),
            completion_event=events_node("$pageview"),
            retention_window_start=0,
            retention_window_end=2,
            retention_window_unit="week",
        ),
        {},
    ),
}


@pytest.mark.parametrize("metric,options", CASES.values(), ids=CASES.keys())
def test_daily_statistics_match_a_per_day_recomputation(metric, options):
    criteria = {
        "filterTestAccounts": options.get("filter_test_accounts", True),
        "multiple_variant_handling": options.get("handling", "exclude"),
    }
    stats_config = {"cuped": {"enabled": True, "lookback_days": options["cuped"]}} if "cuped" in options else None
    experiment = make_experiment(end=options.get("end"), exposure_criteria=criteria, stats_config=stats_config)
    events = sample_events(7, start=START, flag_key=FLAG_KEY)
    store(experiment.project, events)
    setup = Setup(
        flag_key=FLAG_KEY,
        variants=("control", "test"),
        start=START,
        end=options.get("end"),
        tz=ZoneInfo(NEW_YORK),
        handling=criteria["multiple_variant_handling"],
        test_account_filters=tuple(TEST_ACCOUNT_FILTERS) if criteria["filterTestAccounts"] else (),
        cuped_days=options.get("cuped"),
    )
    assert_matches_reference(experiment, metric, events, setup)
    if "cuped" in options and metric["metric_type"] == "ratio":
        (rows,) = daily_rows(experiment, metric, 1)
        assert all(set(RATIO_DENOMINATOR_COVARIATE_FIELDS + COVARIATE_FIELDS) <= set(row) for row in rows.values())


def flag_call(unit: str, at: dt.datetime, variant: str, **properties) -> RawEvent:
    return RawEvent(
        "$feature_flag_called", unit, at, {"$feature_flag": FLAG_KEY, "$feature_flag_response": variant, **properties}
    )


def hours(count: float) -> dt.timedelta:
    return dt.timedelta(hours=count)


def test_a_unit_seen_in_a_second_variant_leaves_the_analysis_on_that_day():
    experiment = make_experiment(timezone="UTC", start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    day = dt.timedelta(days=1)
    start = experiment.start_date
    store(
        experiment.project,
        [
            flag_call("switcher", start + hours(1), "control"),
            flag_call("switcher", start + 2 * day + hours(1), "test"),
            RawEvent("purchase", "switcher", start + hours(2)),
            flag_call("loyal", start + hours(3), "control"),
            flag_call("loyal", start + 2 * day, "control"),
        ],
    )
    rows = daily_rows(experiment, mean(events_node("purchase")), 3)
    assert [(row["control"]["number_of_samples"], row["control"]["sum"]) for row in rows] == [(2, 1), (2, 1), (1, 0)]
    assert [row["test"]["number_of_samples"] for row in rows] == [0, 0, 0]

    experiment.exposure_criteria = {"multiple_variant_handling": "first_seen"}
    rows = daily_rows(experiment, mean(events_node("purchase")), 3)
    assert [(row["control"]["number_of_samples"], row["control"]["sum"]) for row in rows] == [(2, 1), (2, 1), (2, 1)]


def test_only_events_after_the_exposure_and_inside_the_conversion_window_count():
    experiment = make_experiment(timezone="UTC", start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    exposed_at = experiment.start_date + hours(10)
    store(
        experiment.project,
        [
            flag_call("unit", exposed_at, "test"),
            RawEvent("purchase", "unit", exposed_at - hours(1), {"amount": 1}),
            RawEvent("purchase", "unit", exposed_at, {"amount": 10}),
            RawEvent("purchase", "unit", exposed_at + hours(5), {"amount": 100}),
            RawEvent("purchase", "unit", exposed_at + hours(6), {"amount": 1000}),
        ],
    )
    metric = mean(events_node("purchase", math="sum", math_property="amount"))
    assert daily_rows(experiment, metric, 1)[0]["test"]["sum"] == 1110
    metric["conversion_window"], metric["conversion_window_unit"] = 6, "hour"
    assert daily_rows(experiment, metric, 1)[0]["test"]["sum"] == 110


def test_a_numeric_filter_beyond_double_precision_matches_nothing():
    experiment = make_experiment(timezone="UTC", start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    exposed_at = experiment.start_date + hours(1)
    store(
        experiment.project,
        [flag_call("unit", exposed_at, "test"), RawEvent("purchase", "unit", exposed_at + hours(1), {"amount": 5})],
    )
    too_large = events_node("purchase", properties=[{"key": "amount", "operator": "lt", "value": 10**400}])
    assert daily_rows(experiment, mean(too_large), 1)[0]["test"]["sum"] == 0
    assert daily_rows(experiment, mean(events_node("purchase")), 1)[0]["test"]["sum"] == 1


def test_days_end_at_local_midnight_of_the_project():
    experiment = make_experiment(timezone="Asia/Tokyo", start=dt.datetime(2025, 1, 1, 0, 0, tzinfo=dt.UTC))
    midnight = dt.datetime(2025, 1, 2, 0, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 2025-01-01 15:00 UTC
    store(
        experiment.project,
        [
            flag_call("unit", experiment.start_date, "control"),
            RawEvent("purchase", "unit", midnight - dt.timedelta(seconds=1)),
            RawEvent("purchase", "unit", midnight),
            RawEvent("purchase", "unit", midnight + hours(23)),
        ],
    )
    boundaries = day_boundaries(experiment, 2)
    assert boundaries == [midnight.astimezone(dt.UTC), (midnight + dt.timedelta(days=1)).astimezone(dt.UTC)]
    rows = daily_rows(experiment, mean(events_node("purchase")), 2)
    assert [(row["control"]["sum"], row["control"]["sum_squares"]) for row in rows] == [(1, 1), (3, 9)]


def test_winsorization_clamps_at_the_percentiles_of_all_exposed_units():
    experiment = make_experiment(timezone="UTC", start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    start = experiment.start_date
    events = []
    for number, amount in enumerate([0, 1, 2, 3, 4, 5, 6, 7, 8, 1000]):
        events.append(flag_call(f"unit-{number}", start, "control"))
        if amount:
            events.append(RawEvent("purchase", f"unit-{number}", start + hours(1), {"amount": amount}))
    store(experiment.project, events)
    metric = mean(
        events_node("purchase", math="sum", math_property="amount"),
        lower_bound_percentile=0.2,
        upper_bound_percentile=0.8,
    )
    # Sorted values 0..8, 1000: position floor(0.2·10) = 2 → 2, floor(0.8·10) = 8 → 8.
    row = daily_rows(experiment, metric, 1)[0]["control"]
    clamped = [2, 2, 2, 3, 4, 5, 6, 7, 8, 8]
    assert (row["sum"], row["sum_squares"]) == (sum(clamped), sum(value * value for value in clamped))


def test_cuped_covariate_is_the_same_metric_before_exposure():
    experiment = make_experiment(
        timezone="UTC",
        start=dt.datetime(2025, 1, 10, tzinfo=dt.UTC),
        stats_config={"cuped": {"enabled": True, "lookback_days": 2}},
    )
    exposed_at = experiment.start_date + hours(1)
    store(
        experiment.project,
        [
            flag_call("unit", exposed_at, "test"),
            RawEvent("purchase", "unit", exposed_at - dt.timedelta(days=3)),  # before the lookback
            RawEvent("purchase", "unit", exposed_at - dt.timedelta(days=1)),
            RawEvent("purchase", "unit", exposed_at - hours(1)),
            RawEvent("purchase", "unit", exposed_at + hours(1)),
        ],
    )
    row = daily_rows(experiment, mean(events_node("purchase")), 1)[0]["test"]
    assert {name: row[name] for name in (*BASE_FIELDS, *COVARIATE_FIELDS)} == {
        "number_of_samples": 1,
        "sum": 1,
        "sum_squares": 1,
        "covariate_sum": 2,
        "covariate_sum_squares": 4,
        "sum_products": 2,
    }


def test_ratio_cuped_covariates_are_the_numerator_and_denominator_before_exposure():
    experiment = make_experiment(
        timezone="UTC",
        start=dt.datetime(2025, 1, 10, tzinfo=dt.UTC),
        stats_config={"cuped": {"enabled": True, "lookback_days": 2}},
    )
    exposed_at = experiment.start_date + hours(1)
    store(
        experiment.project,
        [
            flag_call("unit", exposed_at, "test"),
            RawEvent("purchase", "unit", exposed_at - dt.timedelta(days=3), {"amount": 100}),  # before the lookback
            RawEvent("purchase", "unit", exposed_at - dt.timedelta(days=1), {"amount": 7}),
            RawEvent("$pageview", "unit", exposed_at - dt.timedelta(days=1)),
            RawEvent("$pageview", "unit", exposed_at - hours(1)),
            RawEvent("$pageview", "unit", exposed_at - hours(2)),
            RawEvent("purchase", "unit", exposed_at + hours(1), {"amount": 5}),
            RawEvent("$pageview", "unit", exposed_at + hours(1)),
            RawEvent("$pageview", "unit", exposed_at + hours(2)),
        ],
    )
    metric = ratio(events_node("purchase", math="sum", math_property="amount"), events_node("$pageview"))
    row = daily_rows(experiment, metric, 1)[0]["test"]
    # M = 5, D = 2 after the exposure; Mp = 7, Dp = 3 in the two days before it.
    assert {name: row[name] for name in (*RATIO_FIELDS, *COVARIATE_FIELDS, *RATIO_DENOMINATOR_COVARIATE_FIELDS)} == {
        "denominator_sum": 2,
        "denominator_sum_squares": 4,
        "numerator_denominator_sum_product": 10,
        "covariate_sum": 7,
        "covariate_sum_squares": 49,
        "sum_products": 35,
        "covariate_denominator_sum": 3,
        "covariate_denominator_sum_squares": 9,
        "denominator_covariate_denominator_sum_product": 6,
        "covariate_numerator_denominator_sum_product": 21,
        "numerator_covariate_denominator_sum_product": 15,
        "covariate_numerator_denominator_post_sum_product": 14,
    }


def test_a_cuped_ratio_result_tests_the_adjusted_effect_of_the_engine_rows():
    config = {"method": "frequentist", "cuped": {"enabled": True, "lookback_days": 14}}
    experiment = make_experiment(stats_config=config)
    store(experiment.project, sample_events(7, start=START, flag_key=FLAG_KEY, units=400))
    metric = {**CASES["cuped ratio"][0], "uuid": "ratio"}
    boundary = day_boundaries(experiment, 8)[-1:]

    (result,) = metric_results_as_of(experiment=experiment, metric=metric, boundaries=boundary)

    (rows,) = daily_variant_statistics(experiment=experiment, metric=metric, boundaries=boundary).variants
    control, test = (by_variant(rows)[key] for key in ("control", "test"))
    fields = [field for field in control if field not in ("key", "number_of_samples")]
    treatment_arm, control_arm = (
        RatioCupedStatistic(n=row["number_of_samples"], **{field: row[field] for field in fields})
        for row in (test, control)
    )
    effect, theta = ratio_cuped_effect(treatment_arm, control_arm, relative=True)
    (variant,) = result["variant_results"]
    assert theta != 0
    assert variant["effect"] == pytest.approx(effect.estimate, rel=1e-9)
    plain = compute_metric_result(rows, metric_type="ratio", stats_config=config, cuped=False)
    assert variant["p_value"] != pytest.approx(plain["variant_results"][0]["p_value"])


def test_funnel_rows_carry_step_counts():
    experiment = make_experiment(timezone="UTC", start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    start = experiment.start_date
    store(
        experiment.project,
        [
            flag_call("browser", start, "test"),
            RawEvent("$pageview", "browser", start + hours(1)),
            flag_call("buyer", start, "test"),
            RawEvent("$pageview", "buyer", start + hours(1)),
            RawEvent("purchase", "buyer", start + hours(2)),
            flag_call("out-of-order", start, "test"),
            RawEvent("purchase", "out-of-order", start + hours(1)),
            RawEvent("$pageview", "out-of-order", start + hours(2)),
        ],
    )
    row = daily_rows(experiment, funnel(events_node("$pageview"), events_node("purchase")), 1)[0]["test"]
    assert (row["number_of_samples"], row["sum"], row["step_counts"]) == (3, 1, [3, 1])


def test_holdout_is_its_own_arm_and_excluded_variants_are_left_out():
    experiment = make_experiment(timezone="UTC", start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    experiment.holdout = HoldoutFactory(project=experiment.project)
    experiment.parameters = {"excluded_variants": ["test"]}
    holdout = f"holdout-{experiment.holdout.pk}"
    start = experiment.start_date
    store(
        experiment.project,
        [
            flag_call("held-out", start, holdout),
            RawEvent("purchase", "held-out", start + hours(1)),
            flag_call("tested", start, "test"),
            flag_call("controlled", start, "control"),
        ],
    )
    rows = daily_rows(experiment, mean(events_node("purchase")), 1)[0]
    assert {key: (row["number_of_samples"], row["sum"]) for key, row in rows.items()} == {
        "control": (1, 0),
        holdout: (1, 1),
    }


def test_a_custom_exposure_event_reads_the_variant_from_the_feature_property():
    experiment = make_experiment(
        timezone="UTC",
        start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        exposure_criteria={
            "exposure_config": {
                "kind": "ExperimentEventExposureConfig",
                "event": "checkout viewed",
                "properties": [{"key": "step", "operator": "exact", "value": [1, 2], "type": "event"}],
            }
        },
    )
    start = experiment.start_date
    feature = f"$feature/{FLAG_KEY}"
    store(
        experiment.project,
        [
            RawEvent("checkout viewed", "a", start, {feature: "test", "step": 1}),
            RawEvent("checkout viewed", "b", start, {feature: "test", "step": 3}),
            RawEvent("checkout viewed", "c", start, {feature: "control", "step": "2"}),
            flag_call("d", start, "control"),
        ],
    )
    rows = daily_rows(experiment, mean(events_node("purchase")), 1)[0]
    assert (rows["control"]["number_of_samples"], rows["test"]["number_of_samples"]) == (1, 1)


def test_daily_exposures_count_first_exposures_and_units_in_several_variants():
    experiment = make_experiment(timezone="UTC", start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    start, day = experiment.start_date, dt.timedelta(days=1)
    store(
        experiment.project,
        [
            flag_call("a", start, "control"),
            flag_call("b", start + day, "test"),
            flag_call("c", start + day, "control"),
            flag_call("c", start + 2 * day, "test"),
        ],
    )
    counts = daily_exposures(experiment=experiment, boundaries=day_boundaries(experiment, 3))
    assert counts == [{"control": 1, "test": 0}, {"control": 0, "test": 1, "$multiple": 1}, {"control": 0, "test": 0}]


def unsupported(option: str) -> str:
    return messages.UNSUPPORTED_METRIC.format(option=option)


def invalid(problem: str) -> str:
    return messages.INVALID_METRIC.format(problem=problem)


BAD_METRICS = {
    "legacy kind": (
        {"kind": "ExperimentTrendsQuery", "count_query": {}},
        invalid(messages.LEGACY_KIND.format(kind="ExperimentTrendsQuery")),
    ),
    "not an object": ([], invalid(messages.NOT_A_DICT)),
    "unknown metric type": (
        {"kind": "ExperimentMetric", "metric_type": "median"},
        invalid(messages.WRONG_METRIC_TYPE),
    ),
    "metric type not a string": (
        {"kind": "ExperimentMetric", "metric_type": []},
        invalid(messages.WRONG_METRIC_TYPE),
    ),
    "actions source": (mean({"kind": "ActionsNode", "id": 3}), unsupported("ActionsNode sources")),
    "data warehouse source": (
        mean(
            {
                "kind": "ExperimentDataWarehouseNode",
                "table_name": "t",
                "timestamp_field": "ts",
                "events_join_key": "distinct_id",
                "data_warehouse_join_key": "user_id",
            }
        ),
        unsupported("ExperimentDataWarehouseNode sources"),
    ),
    "source without kind": (
        mean({"kind": "PersonsNode"}),
        invalid(
            messages.SOURCE_KIND_INVALID.format(
                path="source", kinds="EventsNode, ActionsNode, ExperimentDataWarehouseNode"
            )
        ),
    ),
    "hogql math": (mean(events_node("purchase", math="hogql")), invalid(messages.MATH_INVALID.format(path="source"))),
    "sum without property": (
        mean(events_node("purchase", math="sum")),
        invalid(messages.MATH_PROPERTY_REQUIRED.format(path="source", math="sum")),
    ),
    "session property math": (
        mean(
            events_node(
                "purchase", math="sum", math_property="$session_duration", math_property_type="session_properties"
            )
        ),
        unsupported("math_property_type 'session_properties'"),
    ),
    "group property filter": (
        mean(events_node("purchase", properties=[{"key": "name", "value": "a", "type": "group"}])),
        unsupported("property filters of type 'group' (in source.properties)"),
    ),
    "cohort filter without an id": (
        mean(events_node("purchase", properties=[{"key": "id", "value": "x", "type": "cohort"}])),
        invalid("a cohort filter in source.properties needs a cohort id as its value"),
    ),
    "cohort filter with a bad operator": (
        mean(events_node("purchase", properties=[{"key": "id", "value": 3, "type": "cohort", "operator": "gt"}])),
        invalid("a cohort filter in source.properties takes the operator 'in' or 'not_in'"),
    ),
    "unknown operator": (
        mean(events_node("purchase", properties=[{"key": "plan", "value": "a", "operator": "is_date_after"}])),
        unsupported("property filter operator 'is_date_after'"),
    ),
    "filter without value": (
        mean(events_node("purchase", properties=[{"key": "plan", "operator": "exact"}])),
        invalid("property filter 'plan' needs a value"),
    ),
    "negative conversion window": (
        mean(events_node("purchase"), conversion_window=-1),
        invalid(messages.CONVERSION_WINDOW_INVALID),
    ),
    "unknown window unit": (
        mean(events_node("purchase"), conversion_window=1, conversion_window_unit="fortnight"),
        invalid(messages.CONVERSION_WINDOW_UNIT_INVALID),
    ),
    "window unit not a string": (
        funnel(events_node("a"), conversion_window=1, conversion_window_unit=["day"]),
        invalid(messages.CONVERSION_WINDOW_UNIT_INVALID),
    ),
    "conversion window beyond ten years": (
        mean(events_node("purchase"), conversion_window=10**12, conversion_window_unit="week"),
        invalid("conversion_window must be at most 10 years"),
    ),
    "math not a string": (
        mean(events_node("purchase", math=["sum"])),
        invalid(messages.MATH_INVALID.format(path="source")),
    ),
    "funnel step math not a string": (
        funnel(events_node("a", math=["sum"])),
        invalid(messages.MATH_INVALID.format(path="series[0]")),
    ),
    "percentile above one": (
        mean(events_node("purchase"), upper_bound_percentile=95),
        invalid("upper_bound_percentile must be a number between 0 and 1"),
    ),
    "crossed percentiles": (
        mean(events_node("purchase"), lower_bound_percentile=0.9, upper_bound_percentile=0.1),
        invalid(messages.PERCENTILES_OUT_OF_ORDER),
    ),
    "threshold": (mean(events_node("purchase"), threshold=3), unsupported("a mean metric threshold")),
    "group breakdowns": (
        mean(events_node("purchase"), breakdownFilter={"breakdowns": [{"property": "plan", "type": "group"}]}),
        unsupported("breakdowns of type 'group'"),
    ),
    "session breakdowns": (
        mean(events_node("purchase"), breakdownFilter={"breakdowns": [{"property": "$entry_url", "type": "session"}]}),
        unsupported("breakdowns of type 'session'"),
    ),
    "breakdown filter as a list": (
        mean(events_node("purchase"), breakdownFilter=[{"property": "plan"}]),
        invalid(messages.BREAKDOWN_FILTER_INVALID),
    ),
    "breakdown filter as a string": (
        mean(events_node("purchase"), breakdownFilter="plan"),
        invalid(messages.BREAKDOWN_FILTER_INVALID),
    ),
    "empty funnel": (funnel(), invalid(messages.FUNNEL_WITHOUT_STEPS)),
    "strict funnel": (funnel(events_node("a"), funnel_order_type="strict"), unsupported("funnel_order_type 'strict'")),
    "ratio without denominator": (
        {"kind": "ExperimentMetric", "metric_type": "ratio", "numerator": events_node("a")},
        invalid(messages.MISSING_KEY.format(metric_type="ratio", key="denominator")),
    ),
    "retention in months": (retention(retention_window_unit="month"), unsupported("retention_window_unit 'month'")),
    "retention without end": (
        retention(retention_window_end=None),
        invalid(messages.MISSING_KEY.format(metric_type="retention", key="retention_window_end")),
    ),
    "retention window reversed": (
        retention(retention_window_start=4, retention_window_end=2),
        invalid(messages.RETENTION_WINDOW_OUT_OF_ORDER),
    ),
    "retention window beyond ten years": (
        retention(retention_window_end=10**15, retention_window_unit="week"),
        invalid("retention_window_end must be at most 10 years"),
    ),
    "retention start step math not a string": (
        retention(start_event=events_node("$pageview", math=["dau"])),
        invalid(messages.MATH_INVALID.format(path="start_event")),
    ),
    "retention start handling": (
        retention(start_handling="median"),
        invalid(messages.START_HANDLING_INVALID),
    ),
}


@pytest.mark.parametrize("metric,message", BAD_METRICS.values(), ids=BAD_METRICS.keys())
def test_a_metric_the_engine_cannot_compute_is_refused_with_the_reason(metric, message):
    experiment = make_experiment()
    with pytest.raises(DomainError) as raised:
        daily_rows(experiment, metric, 1)
    assert (raised.value.message, raised.value.attr) == (message, "metric")


def test_experiment_settings_the_engine_cannot_compute_are_refused():
    experiment = make_experiment(parameters={"aggregation_group_type_index": 0})
    with pytest.raises(DomainError) as raised:
        daily_rows(experiment, mean(events_node("purchase")), 1)
    assert raised.value.message == unsupported("group aggregation (aggregation_group_type_index)")

    experiment = make_experiment()
    experiment.feature_flag.filters = {"groups": []}
    with pytest.raises(DomainError) as raised:
        daily_rows(experiment, mean(events_node("purchase")), 1)
    assert raised.value.message == messages.NO_VARIANTS_TO_COMPARE


def assert_close(actual, expected, path: str) -> None:
    """Equal structures with numbers equal up to floating-point rounding."""
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), path
        for key in expected:
            assert_close(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), path
        for index, (left, right) in enumerate(zip(actual, expected, strict=True)):
            assert_close(left, right, f"{path}[{index}]")
    elif isinstance(expected, int | float) and not isinstance(expected, bool):
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9), path
    else:
        assert actual == expected, path
