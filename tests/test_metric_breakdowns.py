"""Breakdowns: per-segment per-variant sums from the SQL engine against the pure-Python reference on adversarial
event sets (missing, null, empty, numeric, boolean and unicode values, a value changing after the first exposure,
more segments than are kept, person properties, tied first exposures), on PostgreSQL, ClickHouse (chDB) and SQLite,
and the results' `breakdown_results`."""

import dataclasses
import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from scipy import stats as scipy_stats

from experiments import messages
from experiments.metrics import daily_variant_statistics
from experiments.results.current import current_metric_result, metric_results_as_of
from experiments.stats import compute_metric_result
from experiments_api.exceptions import error_body
from tests.event_stores import store_raw_persons
from tests.factories import ExperimentFactory, FeatureFlagFactory
from tests.metric_reference import BREAKDOWN_NULL, BREAKDOWN_OTHER, RawEvent, Setup, reference_breakdowns, sample_events
from tests.test_metric_aggregation import (
    CASES,
    FLAG_KEY,
    NEW_YORK,
    START,
    TEST_ACCOUNT_FILTERS,
    day_boundaries,
    engine_fields,
    make_experiment,
    store,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_store")]

DAYS = 6
# 24 values (so some segments are grouped as "other"), with the awkward ones a breakdown must keep apart.
BROWSER_VALUES = [
    None,
    "",
    "Chrome",
    "chrome",
    "Safari",
    "Firefox",
    'He said "hi"',
    "Ünïcødé 🚀",
    "a,b",
    "[1]",
    7,
    2.5,
    True,
    False,
    BREAKDOWN_NULL,
    *[f"browser-{index}" for index in range(9)],
]
PLANS = ["free", "pro", None]


def breakdown_events(seed: int) -> list[RawEvent]:
    """`sample_events` whose flag calls carry `$browser` (sometimes absent, sometimes JSON null) and `region`;
    a unit's later flag calls often carry other values, which must not move it to another segment."""
    rng = random.Random(seed)
    events = []
    for event in sample_events(seed, start=START, flag_key=FLAG_KEY):
        if event.event == "$feature_flag_called":
            browser = rng.choice(BROWSER_VALUES)
            properties = dict(event.properties)
            if browser is not None or rng.random() < 0.5:
                properties["$browser"] = browser
            properties["region"] = rng.choice(["eu", "us"])
            event = dataclasses.replace(event, properties=properties)
        events.append(event)
    # Two exposures of one unit at the same instant: the segment comes from the first by (variant, uuid).
    tie = START + dt.timedelta(hours=5)
    for uuid, browser in (
        ("00000000-0000-4000-8000-000000000002", "tie-late"),
        ("00000000-0000-4000-8000-000000000001", "tie-early"),
    ):
        flag = {"$feature_flag": FLAG_KEY, "$feature_flag_response": "test", "$browser": browser}
        events.append(RawEvent("$feature_flag_called", "unit-tie", tie, flag, uuid=uuid))
    return events


def person_properties(events: list[RawEvent]) -> dict[str, dict]:
    rng = random.Random(3)
    units = sorted({event.distinct_id for event in events})
    properties = {}
    for unit in units:
        plan = rng.choice(PLANS)
        properties[unit] = {} if plan is None else {"plan": plan}
    return properties


def with_breakdowns(metric: dict, breakdowns: list[dict]) -> dict:
    return {**metric, "breakdownFilter": {"breakdowns": breakdowns}}


def engine_segments(experiment, metric: dict) -> list[dict]:
    """Per day, {segment: {variant: fields}} from the engine."""
    statistics = daily_variant_statistics(
        experiment=experiment, metric=metric, boundaries=day_boundaries(experiment, DAYS)
    )
    return [
        {
            segment.breakdown_value: {row["key"]: engine_fields(row) for row in segment.variants[day]}
            for segment in statistics.segments
        }
        for day in range(DAYS)
    ]


def breakdown_mismatches(experiment, metric: dict, events: list[RawEvent], setup: Setup) -> list[str]:
    """Where the engine's segments differ from the reference's (empty when they agree)."""
    boundaries = day_boundaries(experiment, DAYS)
    engine = engine_segments(experiment, metric)
    problems = []
    for day, expected in enumerate(reference_breakdowns(events, setup, metric, boundaries)):
        if set(engine[day]) != set(expected):
            problems.append(f"day {day}: segments {sorted(engine[day])} != {sorted(expected)}")
            continue
        for segment, variants in engine[day].items():
            for variant, actual in variants.items():
                wanted = {
                    name: value for name, value in expected.get(segment, {}).get(variant, {}).items() if name in actual
                }
                wanted = wanted or dict.fromkeys(actual, 0.0)
                if actual != pytest.approx(wanted, rel=1e-9, abs=1e-9):
                    problems.append(f"day {day}, {segment}, {variant}: {actual} != {wanted}")
    return problems


def breakdown_setup(breakdowns, properties, **options) -> Setup:
    return Setup(
        flag_key=FLAG_KEY,
        variants=("control", "test"),
        start=START,
        end=None,
        tz=ZoneInfo(NEW_YORK),
        handling=options.get("handling", "exclude"),
        test_account_filters=tuple(TEST_ACCOUNT_FILTERS),
        cuped_days=options.get("cuped"),
        person_properties=properties,
        breakdowns=tuple(breakdowns),
    )


BROWSER = {"property": "$browser"}
REGION = {"property": "region", "type": "event"}
PLAN = {"property": "plan", "type": "person"}
BREAKDOWN_CASES = {
    "count by browser": ("count", [BROWSER], {}),
    "sum by browser and region": ("sum with a conversion window", [BROWSER, REGION], {}),
    "avg by person plan": ("avg of a filtered source", [PLAN], {}),
    "dau by three breakdowns": ("dau", [REGION, PLAN, BROWSER], {}),
    "cuped count by plan": ("cuped count", [PLAN], {"cuped": 14}),
    "first seen, unique sessions by browser": ("unique sessions of all events", [BROWSER], {"handling": "first_seen"}),
    "ordered funnel by browser": ("ordered funnel with a window", [BROWSER], {}),
    "unordered funnel by region": ("unordered funnel", [REGION], {}),
    "ratio by plan and region": ("ratio", [PLAN, REGION], {}),
    "retention by browser": ("retention, days, last seen, window", [BROWSER], {}),
}


def breakdown_experiment(options: dict):
    criteria = {"filterTestAccounts": True, "multiple_variant_handling": options.get("handling", "exclude")}
    stats_config = {"cuped": {"enabled": True, "lookback_days": options["cuped"]}} if "cuped" in options else None
    experiment = make_experiment(exposure_criteria=criteria, stats_config=stats_config)
    events = breakdown_events(7)
    properties = person_properties(events)
    store(experiment.project, events)
    store_raw_persons(experiment.project, properties)
    return experiment, events, properties


@pytest.mark.parametrize("case,breakdowns,options", BREAKDOWN_CASES.values(), ids=BREAKDOWN_CASES.keys())
def test_segments_match_the_reference(case, breakdowns, options):
    experiment, events, properties = breakdown_experiment(options)
    metric = with_breakdowns(CASES[case][0], breakdowns)
    setup = breakdown_setup(breakdowns, properties, **options)
    assert breakdown_mismatches(experiment, metric, events, setup) == []


def test_segments_sum_to_the_all_segments_analysis_and_keep_the_top_twenty():
    experiment, _events, _properties = breakdown_experiment({})
    metric = CASES["sum with a conversion window"][0]
    boundaries = day_boundaries(experiment, DAYS)
    plain = daily_variant_statistics(experiment=experiment, metric=metric, boundaries=boundaries)
    split = daily_variant_statistics(
        experiment=experiment, metric=with_breakdowns(metric, [BROWSER]), boundaries=boundaries
    )
    assert split.variants == plain.variants
    assert split.exposures == plain.exposures
    values = [segment.breakdown_value for segment in split.segments]
    assert len(values) == 21
    assert values[-1] == (BREAKDOWN_OTHER,)
    assert (BREAKDOWN_NULL,) in values
    for day in range(DAYS):
        for index in range(2):
            for name in ("number_of_samples", "sum", "sum_squares"):
                total = sum(segment.variants[day][index][name] for segment in split.segments)
                assert total == pytest.approx(plain.variants[day][index][name], rel=1e-9)


TIED_EARLY = "00000000-0000-4000-8000-000000000002"
TIED_LATE = "10000000-0000-4000-8000-000000000001"


def test_a_unit_keeps_the_segment_of_its_first_exposure():
    experiment = make_experiment(timezone="UTC", start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    start = experiment.start_date
    flag = {"$feature_flag": FLAG_KEY, "$feature_flag_response": "test"}
    store(
        experiment.project,
        [
            RawEvent("$feature_flag_called", "mover", start + dt.timedelta(hours=2), {**flag, "$browser": "Safari"}),
            RawEvent("$feature_flag_called", "mover", start + dt.timedelta(hours=1), {**flag, "$browser": "Chrome"}),
            RawEvent("purchase", "mover", start + dt.timedelta(hours=3)),
            RawEvent("$feature_flag_called", "blank", start + dt.timedelta(hours=1), {**flag, "$browser": None}),
            # Two first exposures at one instant: the first by uuid text wins (ClickHouse's own UUID order, low
            # 64 bits first, would pick the other).
            RawEvent("$feature_flag_called", "tied", start, {**flag, "$browser": "late"}, uuid=TIED_LATE),
            RawEvent("$feature_flag_called", "tied", start, {**flag, "$browser": "early"}, uuid=TIED_EARLY),
        ],
    )
    metric = with_breakdowns(CASES["count"][0], [BROWSER])
    statistics = daily_variant_statistics(
        experiment=experiment, metric=metric, boundaries=day_boundaries(experiment, 1)
    )
    segments = {segment.breakdown_value: segment.variants[0][1] for segment in statistics.segments}
    assert {value: (row["number_of_samples"], row["sum"]) for value, row in segments.items()} == {
        ("Chrome",): (1, 1.0),
        (BREAKDOWN_NULL,): (1, 0.0),
        ("early",): (1, 0.0),
    }


def segment_experiment(stats_config=None, project=None):
    """Units exposed over two days, each with a `$browser` on its flag call; test units buy more on Chrome."""
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    if project is None:
        experiment = make_experiment(timezone="UTC", start=start, stats_config=stats_config)
    else:
        flag = FeatureFlagFactory(project=project, key=FLAG_KEY)
        experiment = ExperimentFactory(project=project, feature_flag=flag, start_date=start, stats_config=stats_config)
    start = experiment.start_date
    events = []
    for number in range(480):
        unit, variant = f"unit-{number}", ("control", "test")[number % 2]
        browser = ("Chrome", "Safari", None)[number % 3]
        flag = {"$feature_flag": FLAG_KEY, "$feature_flag_response": variant}
        if browser is not None:
            flag["$browser"] = browser
        at = start + dt.timedelta(minutes=number * 5)
        events.append(RawEvent("$feature_flag_called", unit, at, flag))
        purchases = (number % 5) + (3 if variant == "test" and browser == "Chrome" else 0)
        events.extend(RawEvent("purchase", unit, at + dt.timedelta(minutes=minute + 1)) for minute in range(purchases))
    store(experiment.project, events)
    return experiment


def query_body(client, experiment, metric):
    return client.post(
        f"/api/projects/{experiment.project_id}/query/",
        {"query": {"kind": "ExperimentQuery", "experiment_id": experiment.pk, "metric": metric}},
        format="json",
    )


def test_the_result_carries_breakdown_results_with_corrected_p_values(api_client, project):
    experiment = segment_experiment({"method": "frequentist"}, project=project)
    metric = with_breakdowns(CASES["count"][0], [BROWSER])

    response = query_body(api_client, experiment, metric)

    assert response.status_code == 200
    body = response.json()
    plain = query_body(api_client, experiment, CASES["count"][0]).json()
    assert (body["baseline"], body["variant_results"]) == (plain["baseline"], plain["variant_results"])
    items = body["breakdown_results"]
    assert [item["breakdown_value"] for item in items] == [[BREAKDOWN_NULL], ["Chrome"], ["Safari"]]
    assert all(item["exploratory"] is True for item in items)
    assert [item["baseline"]["number_of_samples"] for item in items] == [80, 80, 80]
    p_values = [item["variant_results"][0]["p_value"] for item in items]
    adjusted = [item["variant_results"][0]["p_value_adjusted"] for item in items]
    assert adjusted == pytest.approx(list(scipy_stats.false_discovery_control(p_values, method="bh")), abs=1e-12)
    assert [item["variant_results"][0]["significant"] for item in items] == [p < 0.05 for p in adjusted]
    assert items[1]["variant_results"][0]["significant"] is True


def test_breakdown_results_use_the_configured_correction_and_leave_chance_to_win_alone():
    experiment = segment_experiment({"method": "frequentist", "multiple_testing_correction": "holm"})
    metric = with_breakdowns(CASES["count"][0], [BROWSER])
    items = current_metric_result(experiment=experiment, metric=metric)["breakdown_results"]
    p_values = [item["variant_results"][0]["p_value"] for item in items]
    holm = [min(1.0, p) for p in _holm(p_values)]
    assert [item["variant_results"][0]["p_value_adjusted"] for item in items] == pytest.approx(holm, abs=1e-12)

    experiment.stats_config = None
    items = current_metric_result(experiment=experiment, metric=metric)["breakdown_results"]
    for item in items:
        (variant,) = item["variant_results"]
        assert variant["method"] == "bayesian" and "p_value_adjusted" not in variant
        alone = compute_metric_result(
            [item["baseline"], variant], metric_type="mean", stats_config=None, baseline_key="control"
        )
        assert variant["chance_to_win"] == alone["variant_results"][0]["chance_to_win"]


def _holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment, written out independently of the engine."""
    order = sorted(range(len(p_values)), key=lambda index: p_values[index])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, (len(p_values) - rank) * p_values[index])
        adjusted[index] = running
    return adjusted


def test_stored_daily_results_carry_the_breakdowns():
    experiment = segment_experiment()
    metric = with_breakdowns(CASES["count"][0], [BROWSER])
    boundaries = day_boundaries(experiment, 2)
    results = metric_results_as_of(experiment=experiment, metric=metric, boundaries=boundaries)
    first, second = (
        [item["baseline"]["number_of_samples"] for item in result["breakdown_results"]] for result in results
    )
    assert sum(first) == results[0]["baseline"]["number_of_samples"] and sum(first) < sum(second) == 240


def bad_metric_error(detail: str) -> dict:
    return error_body(type="validation_error", code="invalid_metric", detail=detail, attr="metric")


@pytest.mark.parametrize(
    "breakdown_filter,detail",
    [
        (
            {"breakdowns": [{"property": f"p{index}"} for index in range(4)]},
            "Maximum of 3 breakdowns are supported for experiment metrics",
        ),
        (
            {"breakdowns": [{"property": 5}]},
            messages.INVALID_METRIC.format(problem=messages.BREAKDOWN_PROPERTY_INVALID.format(index=0)),
        ),
        (
            {"breakdowns": [None]},
            messages.INVALID_METRIC.format(problem=messages.BREAKDOWN_NOT_OBJECT.format(index=0)),
        ),
        (
            {"breakdowns": [{"property": "$os", "type": "cohort"}]},
            messages.INVALID_METRIC.format(
                problem=messages.BREAKDOWN_TYPE_INVALID.format(index=0, types="event, person, group, session")
            ),
        ),
    ],
    ids=["four breakdowns", "a non-string property", "a breakdown not an object", "an unknown type"],
)
def test_a_bad_breakdown_on_query_is_a_400(api_client, project, breakdown_filter, detail):
    flag = FeatureFlagFactory(project=project, key=FLAG_KEY)
    experiment = ExperimentFactory(project=project, feature_flag=flag, start_date=START)
    metric = {**CASES["count"][0], "breakdownFilter": breakdown_filter}
    response = query_body(api_client, experiment, metric)
    assert (response.status_code, response.json()) == (400, bad_metric_error(detail))


def test_a_group_breakdown_on_query_is_a_400_naming_it(api_client, project):
    flag = FeatureFlagFactory(project=project, key=FLAG_KEY)
    experiment = ExperimentFactory(project=project, feature_flag=flag, start_date=START)
    metric = with_breakdowns(CASES["count"][0], [{"property": "name", "type": "group", "group_type_index": 0}])
    response = query_body(api_client, experiment, metric)
    assert (response.status_code, response.json()) == (
        400,
        error_body(
            type="validation_error",
            code="unsupported_metric",
            detail=messages.UNSUPPORTED_METRIC.format(option="breakdowns of type 'group'"),
            attr="metric",
        ),
    )


def test_an_experiment_with_four_breakdowns_on_a_metric_is_refused(api_client, project):
    metric = {**CASES["count"][0], "breakdownFilter": {"breakdowns": [{"property": f"p{n}"} for n in range(4)]}}
    response = api_client.post(
        f"/api/projects/{project.pk}/experiments/",
        {"name": "Breakdowns", "feature_flag_key": "breakdowns", "metrics": [metric], "allow_unknown_events": True},
        format="json",
    )
    assert (response.status_code, response.json()) == (
        400,
        error_body(
            type="validation_error",
            code="invalid_input",
            detail="Maximum of 3 breakdowns are supported for experiment metrics",
            attr="metrics",
        ),
    )
