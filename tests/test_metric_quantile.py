"""Quantile metrics (unit level): q̂, L, U and n* per variant and day from the SQL engine against a numpy
reference, on PostgreSQL, ClickHouse (chDB) and SQLite; the statistics wired through `/query/`; every bad quantile
input a 400."""

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from experiments import messages
from experiments.metrics import daily_variant_statistics
from experiments.stats import frequentist_test
from experiments.stats.quantile import QuantileStatistic
from experiments_api.exceptions import error_body
from tests.factories import ExperimentFactory, FeatureFlagFactory
from tests.helpers import run_on_sqlite
from tests.metric_reference import Setup, reference_statistics, sample_events
from tests.test_metric_aggregation import (
    FLAG_KEY,
    NEW_YORK,
    START,
    TEST_ACCOUNT_FILTERS,
    day_boundaries,
    events_node,
    make_experiment,
    store,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_store")]

DAYS = 6
UNITS = 500
FIELDS = ("number_of_samples", "quantile_n", "quantile", "quantile_lower", "quantile_upper", "quantile_nstar")


def quantile(source: dict, q: float, **extra) -> dict:
    return {"kind": "ExperimentMetric", "metric_type": "quantile", "source": source, "quantile": q, **extra}


AMOUNT = events_node("purchase", math="sum", math_property="amount")
QUANTILE_CASES = {
    "median page views": (quantile(events_node("$pageview"), 0.5), {}),
    "P90 amount ignoring zeros": (quantile(AMOUNT, 0.9, ignore_zeros=True, quantile_type="unit"), {}),
    "P90 amount": (quantile(AMOUNT, 0.9), {}),
    "P99 amount": (quantile(AMOUNT, 0.99), {}),
    "P25 max amount in a window": (
        quantile(events_node("purchase", math="max", math_property="amount"), 0.25, conversion_window=2),
        {},
    ),
    "P75 sessions, first seen": (quantile(events_node(None, math="unique_session"), 0.75), {"handling": "first_seen"}),
}


def quantile_experiment(options: dict):
    criteria = {"filterTestAccounts": True, "multiple_variant_handling": options.get("handling", "exclude")}
    experiment = make_experiment(exposure_criteria=criteria)
    events = sample_events(11, start=START, flag_key=FLAG_KEY, units=UNITS)
    store(experiment.project, events)
    setup = Setup(
        flag_key=FLAG_KEY,
        variants=("control", "test"),
        start=START,
        end=None,
        tz=ZoneInfo(NEW_YORK),
        handling=criteria["multiple_variant_handling"],
        test_account_filters=tuple(TEST_ACCOUNT_FILTERS),
    )
    return experiment, events, setup


def quantile_mismatches(experiment, metric: dict, events, setup: Setup) -> list[str]:
    boundaries = day_boundaries(experiment, DAYS)
    statistics = daily_variant_statistics(experiment=experiment, metric=metric, boundaries=boundaries)
    problems = []
    for day, query_to in enumerate(boundaries):
        expected = reference_statistics(events, setup, metric, query_to)
        for row in statistics.variants[day]:
            actual = {name: row[name] for name in FIELDS}
            wanted = {name: expected[row["key"]][name] for name in FIELDS}
            numbers = [name for name in FIELDS if name != "quantile_nstar"]
            same_nstar = actual["quantile_nstar"] == wanted["quantile_nstar"]
            if not same_nstar or [actual[n] for n in numbers] != pytest.approx(
                [wanted[n] for n in numbers], rel=1e-9, abs=1e-9
            ):
                problems.append(f"day {day}, {row['key']}: {actual} != {wanted}")
    return problems


@pytest.mark.parametrize("metric,options", QUANTILE_CASES.values(), ids=QUANTILE_CASES.keys())
def test_quantiles_match_the_reference(metric, options):
    experiment, events, setup = quantile_experiment(options)
    assert quantile_mismatches(experiment, metric, events, setup) == []


def test_the_grid_picks_the_largest_nstar_below_the_number_of_values_whose_bounds_differ():
    experiment, _events, _setup = quantile_experiment({})
    boundaries = day_boundaries(experiment, DAYS)
    amounts = daily_variant_statistics(
        experiment=experiment, metric=QUANTILE_CASES["P90 amount"][0], boundaries=boundaries
    )
    last = amounts.variants[-1]
    assert all(200 <= row["quantile_n"] < 400 and row["quantile_nstar"] == 200 for row in last)
    assert all(row["quantile_lower"] < row["quantile"] <= row["quantile_upper"] for row in last)
    assert all(row["quantile_n"] < 100 and row["quantile_nstar"] is None for row in amounts.variants[0])
    # Page-view counts are so discrete that L = U for every n*: no inference.
    views = daily_variant_statistics(
        experiment=experiment, metric=QUANTILE_CASES["median page views"][0], boundaries=boundaries
    )
    assert [row["quantile_nstar"] for row in views.variants[-1]] == [None, None]


def query(client, experiment, metric):
    return client.post(
        f"/api/projects/{experiment.project_id}/query/",
        {"query": {"kind": "ExperimentQuery", "experiment_id": experiment.pk, "metric": metric}},
        format="json",
    )


def launched(project, stats_config=None):
    flag = FeatureFlagFactory(project=project, key=FLAG_KEY)
    return ExperimentFactory(
        project=project,
        feature_flag=flag,
        start_date=START,
        end_date=START + dt.timedelta(days=DAYS),
        stats_config=stats_config,
    )


def test_a_quantile_result_runs_the_quantile_statistic(api_client, project):
    experiment = launched(project, {"method": "frequentist", "difference_type": "relative"})
    store(project, sample_events(11, start=START, flag_key=FLAG_KEY, units=UNITS))
    metric = QUANTILE_CASES["P90 amount"][0]

    response = query(api_client, experiment, metric)

    assert response.status_code == 200
    body = response.json()
    baseline, (test,) = body["baseline"], body["variant_results"]
    assert baseline["validation_failures"] == [] and test["validation_failures"] == []

    def statistic(row):
        return QuantileStatistic(
            n=row["quantile_n"],
            nu=0.9,
            quantile=row["quantile"],
            lower=row["quantile_lower"],
            upper=row["quantile_upper"],
            nstar=row["quantile_nstar"],
        )

    outcome = frequentist_test(statistic(test), statistic(baseline), alpha=0.05, relative=True)
    assert test["p_value"] == pytest.approx(outcome.p_value, rel=1e-12)
    assert test["confidence_interval"] == pytest.approx(list(outcome.ci), rel=1e-12)
    assert test["quantile_level"] == 0.9 and baseline["quantile_nstar"] == 200


def test_a_quantile_with_too_few_values_gets_no_inference(api_client, project):
    experiment = launched(project)
    store(project, sample_events(11, start=START, flag_key=FLAG_KEY, units=160))
    body = query(api_client, experiment, QUANTILE_CASES["P99 amount"][0]).json()
    assert "not-enough-metric-data" in body["variant_results"][0]["validation_failures"]
    assert "chance_to_win" not in body["variant_results"][0]


def invalid_metric(problem: str) -> dict:
    detail = messages.INVALID_METRIC.format(problem=problem)
    return error_body(type="validation_error", code="invalid_metric", detail=detail, attr="metric")


BAD_QUANTILES = {
    "zero": ({"quantile": 0}, messages.QUANTILE_INVALID),
    "one": ({"quantile": 1}, messages.QUANTILE_INVALID),
    "a percentage": ({"quantile": 90}, messages.QUANTILE_INVALID),
    "a string": ({"quantile": "0.9"}, messages.QUANTILE_INVALID),
    "a boolean": ({"quantile": True}, messages.QUANTILE_INVALID),
    "missing": ({"quantile": None}, messages.MISSING_KEY.format(metric_type="quantile", key="quantile")),
    "an unknown type": ({"quantile_type": "session"}, messages.QUANTILE_TYPE_INVALID),
    "ignore_zeros not a boolean": ({"ignore_zeros": "yes"}, messages.IGNORE_ZEROS_INVALID),
}


@pytest.mark.parametrize("change,problem", BAD_QUANTILES.values(), ids=BAD_QUANTILES.keys())
def test_a_bad_quantile_is_a_400_naming_the_field(api_client, project, change, problem):
    experiment = launched(project)
    metric = {**quantile(events_node("$pageview"), 0.9), **change}
    response = query(api_client, experiment, metric)
    assert (response.status_code, response.json()) == (400, invalid_metric(problem))

    created = api_client.post(
        f"/api/projects/{project.pk}/experiments/",
        {"name": "Quantiles", "feature_flag_key": "quantiles", "metrics": [metric], "allow_unknown_events": True},
        format="json",
    )
    assert (created.status_code, created.json()) == (
        400,
        error_body(
            type="validation_error",
            code="invalid_input",
            detail=messages.INVALID_METRIC_AT_INDEX.format(index=0, problem=problem),
            attr="metrics",
        ),
    )


@pytest.mark.parametrize(
    "change,option",
    [
        ({"quantile_type": "event"}, "quantile_type 'event'"),
        ({"breakdownFilter": {"breakdowns": [{"property": "$browser"}]}}, "breakdowns on quantile metrics"),
    ],
    ids=["event level", "breakdowns"],
)
def test_what_the_engine_does_not_compute_for_quantiles_is_a_400(api_client, project, change, option):
    experiment = launched(project)
    response = query(api_client, experiment, {**quantile(events_node("$pageview"), 0.9), **change})
    assert (response.status_code, response.json()) == (
        400,
        error_body(
            type="validation_error",
            code="unsupported_metric",
            detail=messages.UNSUPPORTED_METRIC.format(option=option),
            attr="metric",
        ),
    )


SQLITE_SCRIPT = """
import json, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from tests.test_metric_quantile import QUANTILE_CASES, quantile_experiment, quantile_mismatches
problems = {}
for name in json.loads(sys.argv[1]):
    metric, options = QUANTILE_CASES[name]
    experiment, events, setup = quantile_experiment(options)
    problems[name] = quantile_mismatches(experiment, metric, events, setup)
print(json.dumps(problems))
"""


# SQLite against the reference: the parametrised event store plays no part.
@pytest.mark.parametrize("event_store", ["postgres"], indirect=True)
def test_sqlite_computes_the_same_quantiles(tmp_path: Path):
    names = ["median page views", "P90 amount ignoring zeros"]
    output = run_on_sqlite(SQLITE_SCRIPT, names, tmp_path)
    assert output == dict.fromkeys(names, [])
