"""Breakdowns: per-segment per-variant sums from the SQL engine against the pure-Python reference on adversarial
event sets (missing, null, empty, numeric, boolean and unicode values, a value changing after the first exposure,
more segments than are kept, person properties), on PostgreSQL and SQLite, and the results' `breakdown_results`."""

import dataclasses
import datetime as dt
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from experiments.metrics import daily_variant_statistics
from persons.models import Person, person_uuid
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

pytestmark = pytest.mark.django_db

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


def store_persons(project, properties: dict[str, dict]) -> None:
    Person.objects.bulk_create(
        Person(project=project, uuid=person_uuid(project.pk, unit), properties=props)
        for unit, props in properties.items()
    )


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
    store_persons(experiment.project, properties)
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
    }


SQLITE_SCRIPT = """
import json, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from tests.test_metric_aggregation import CASES
from tests.test_metric_breakdowns import (
    BREAKDOWN_CASES, breakdown_experiment, breakdown_mismatches, breakdown_setup, with_breakdowns,
)
problems = {}
for name in json.loads(sys.argv[1]):
    case, breakdowns, options = BREAKDOWN_CASES[name]
    experiment, events, properties = breakdown_experiment(options)
    metric = with_breakdowns(CASES[case][0], breakdowns)
    problems[name] = breakdown_mismatches(experiment, metric, events, breakdown_setup(breakdowns, properties, **options))
print(json.dumps(problems))
"""


def test_sqlite_computes_the_same_segments(tmp_path: Path):
    names = ["count by browser", "dau by three breakdowns", "ordered funnel by browser", "ratio by plan and region"]
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "experiments_api.settings.base",
        "SECRET_KEY": "sqlite-test",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
    }
    output = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT, json.dumps(names)],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    assert json.loads(output) == dict.fromkeys(names, [])
