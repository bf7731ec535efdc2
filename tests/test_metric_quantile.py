"""Quantile metrics, unit and event level: q̂, L, U and n* (and at event level the clustering sums) per variant and
day from the SQL engine against a numpy reference, on PostgreSQL, ClickHouse (chDB) and SQLite, also on an
adversarial event set (ties, single events, missing and non-numeric values, zeros, re-sent events, a unit leaving
the analysis); the statistics wired through `/query/` in both engines; every bad quantile input a 400."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from experiments import messages
from experiments.metrics import daily_variant_statistics
from experiments.metrics.quantile import CLUSTER_FIELDS
from experiments.stats import bayesian_test, frequentist_test
from experiments.stats.quantile import QuantileClusteredStatistic, QuantileStatistic
from experiments_api.exceptions import error_body
from tests.event_stores import stored_events
from tests.factories import ExperimentFactory, FeatureFlagFactory
from tests.metric_reference import RawEvent, Setup, reference_statistics, sample_event_values, sample_events
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
from tests.test_person_metrics import ingest

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
    "event P90 amount": (quantile(AMOUNT, 0.9, quantile_type="event"), {}),
    "event median amount ignoring zeros in a window": (
        quantile(
            events_node("purchase", math="avg", math_property="amount"),
            0.5,
            quantile_type="event",
            ignore_zeros=True,
            conversion_window=36,
            conversion_window_unit="hour",
        ),
        {},
    ),
    "event P99 amount of pro plans, first seen": (
        quantile(
            events_node(
                "purchase",
                math="max",
                math_property="amount",
                properties=[{"key": "plan", "operator": "icontains", "value": "pro", "type": "event"}],
            ),
            0.99,
            quantile_type="event",
        ),
        {"handling": "first_seen"},
    ),
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
    """Where the engine's rows differ from the reference's, every day and variant (empty when they agree)."""
    boundaries = day_boundaries(experiment, DAYS)
    statistics = daily_variant_statistics(experiment=experiment, metric=metric, boundaries=boundaries)
    fields = FIELDS + (CLUSTER_FIELDS if metric.get("quantile_type") == "event" else ())
    problems = []
    for day, query_to in enumerate(boundaries):
        expected = reference_statistics(events, setup, metric, query_to)
        for row in statistics.variants[day]:
            unexpected = set(row) - {"key", "quantile_level", *fields}
            if unexpected:
                problems.append(f"day {day}, {row['key']}: unexpected fields {sorted(unexpected)}")
            actual = {name: row[name] for name in fields}
            wanted = {name: expected[row["key"]][name] for name in fields}
            numbers = [name for name in fields if name != "quantile_nstar"]
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


AWKWARD_CASES = {
    "unit P90 amount": quantile(AMOUNT, 0.9),
    "event median amount": quantile(AMOUNT, 0.5, quantile_type="event"),
    "event P90 amount ignoring zeros": quantile(
        events_node("purchase", math="avg", math_property="amount"), 0.9, quantile_type="event", ignore_zeros=True
    ),
    "event P25 min amount in a day's window": quantile(
        events_node("purchase", math="min", math_property="amount"), 0.25, quantile_type="event", conversion_window=1
    ),
    "event P99 max amount": quantile(
        events_node("purchase", math="max", math_property="amount"), 0.99, quantile_type="event"
    ),
}


def awkward_experiment(event_store: str, project=None, stats_config=None):
    """`sample_event_values` ingested (into the active store) as an SDK sends them: one batch holding a copy of some of its own events, a
    later batch re-sending others; on ClickHouse raw copies too (past the insert's check, FINAL collapses them)."""
    experiment = make_experiment(stats_config=stats_config) if project is None else launched(project, stats_config)
    events, resent = sample_event_values(5, start=START, flag_key=FLAG_KEY)
    ingest(experiment.project, events + resent[:5])
    ingest(experiment.project, resent)
    if event_store == "clickhouse":
        store(experiment.project, resent)
    assert sorted(event["uuid"] for event in stored_events(experiment.project)) == sorted(e.uuid for e in events)
    setup = Setup(
        flag_key=FLAG_KEY,
        variants=("control", "test"),
        start=START,
        end=None,
        tz=experiment.project.tzinfo,
        test_account_filters=tuple(experiment.project.test_account_filters),
    )
    return experiment, events, setup


@pytest.mark.parametrize("metric", AWKWARD_CASES.values(), ids=AWKWARD_CASES.keys())
def test_awkward_values_match_the_reference(event_store, metric):
    experiment, events, setup = awkward_experiment(event_store)
    assert quantile_mismatches(experiment, metric, events, setup) == []


def test_the_awkward_set_reaches_every_case(event_store):
    """The adversarial set is what it claims: one value per arm on the first day, inference on the last day, a
    quantile on a tied value (its ties count as at or below it), and the leaver counted until it leaves."""
    experiment, events, _setup = awkward_experiment(event_store)
    boundaries = day_boundaries(experiment, DAYS)
    statistics = daily_variant_statistics(
        experiment=experiment, metric=AWKWARD_CASES["event median amount"], boundaries=boundaries
    )
    first, last = statistics.variants[0], statistics.variants[-1]
    assert [(row["quantile_n"], row["n_clusters"]) for row in first] == [(1, 1), (1, 1)]
    assert all(row["quantile_nstar"] is not None and row["n_clusters"] > 100 for row in last)
    control = [day[0]["number_of_samples"] for day in statistics.variants]
    assert control[-2] == control[-1] + 1
    tied = daily_variant_statistics(
        experiment=experiment, metric=AWKWARD_CASES["event P25 min amount in a day's window"], boundaries=boundaries
    ).variants[-1][0]
    amounts = [event.properties.get("amount") for event in events if event.event == "purchase"]
    assert tied["quantile"] == 10.0 and amounts.count(10) > 10
    assert tied["quantile_n"] * 0.25 < tied["sum"]


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


def clustered(row: dict) -> QuantileClusteredStatistic:
    """The event-level statistic, built from a result row's fields."""
    return QuantileClusteredStatistic(
        n=row["quantile_n"],
        nu=row["quantile_level"],
        quantile=row["quantile"],
        lower=row["quantile_lower"],
        upper=row["quantile_upper"],
        nstar=row["quantile_nstar"],
        n_clusters=row["n_clusters"],
        sum=row["sum"],
        sum_squares=row["sum_squares"],
        denominator_sum=row["denominator_sum"],
        denominator_sum_squares=row["denominator_sum_squares"],
        numerator_denominator_sum_product=row["numerator_denominator_sum_product"],
    )


@pytest.mark.parametrize(
    "stats_config",
    [
        {"method": "frequentist", "difference_type": "absolute"},
        {"method": "frequentist", "difference_type": "relative"},
        {"method": "bayesian", "difference_type": "absolute"},
        {"method": "bayesian", "difference_type": "relative"},
    ],
    ids=["frequentist absolute", "frequentist relative", "bayesian absolute", "bayesian relative"],
)
def test_an_event_level_result_runs_the_clustered_statistic(api_client, project, event_store, stats_config):
    experiment, events, setup = awkward_experiment(event_store, project=project, stats_config=stats_config)
    metric = AWKWARD_CASES["event P90 amount ignoring zeros"]

    response = query(api_client, experiment, metric)

    assert response.status_code == 200
    body = response.json()
    baseline, (test,) = body["baseline"], body["variant_results"]
    expected = reference_statistics(events, setup, metric, experiment.end_date)
    for row in (baseline, test):
        assert row["validation_failures"] == []
        wanted = expected[row["key"]]
        assert {name: row[name] for name in FIELDS + CLUSTER_FIELDS} == pytest.approx(
            {name: wanted[name] for name in FIELDS + CLUSTER_FIELDS}, rel=1e-12
        )
    treatment, control = clustered(test), clustered(baseline)
    # Clustering matters here: units have several events each.
    unclustered = QuantileStatistic(
        treatment.n, treatment.nu, treatment.quantile, treatment.lower, treatment.upper, treatment.nstar
    )
    assert treatment.variance != pytest.approx(unclustered.variance, rel=0.01)
    relative = stats_config["difference_type"] == "relative"
    if stats_config["method"] == "frequentist":
        outcome = frequentist_test(treatment, control, alpha=0.05, relative=relative)
        assert test["p_value"] == pytest.approx(outcome.p_value, rel=1e-12)
        assert test["confidence_interval"] == pytest.approx(list(outcome.ci), rel=1e-12)
    else:
        outcome = bayesian_test(treatment, control, ci_level=0.95, relative=relative)
        assert test["chance_to_win"] == pytest.approx(outcome.chance_to_win, rel=1e-12)
        assert test["credible_interval"] == pytest.approx(list(outcome.ci), rel=1e-12)


def test_an_event_level_arm_with_one_unit_gets_no_inference(api_client, project):
    """Clustering needs two units with events; one unit with hundreds of events is still one cluster."""
    experiment = launched(project)
    flag = {"$feature_flag": FLAG_KEY}
    events = [RawEvent("$feature_flag_called", "whale", START, {**flag, "$feature_flag_response": "test"})]
    events += [RawEvent("purchase", "whale", START + dt.timedelta(minutes=m), {"amount": m}) for m in range(1, 300)]
    for number in range(60):
        unit = f"small-{number}"
        events.append(RawEvent("$feature_flag_called", unit, START, {**flag, "$feature_flag_response": "control"}))
        events += [
            RawEvent("purchase", unit, START + dt.timedelta(minutes=m), {"amount": number + m}) for m in range(1, 6)
        ]
    store(project, events)
    body = query(api_client, experiment, AWKWARD_CASES["event median amount"]).json()
    (test,) = body["variant_results"]
    assert (test["n_clusters"], test["quantile_n"], test["quantile_nstar"]) == (1, 299, 200)
    assert "not-enough-metric-data" in test["validation_failures"] and "p_value" not in test
    assert body["baseline"]["validation_failures"] == []


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
    "event level over counts": ({"quantile_type": "event"}, messages.EVENT_QUANTILE_NEEDS_VALUE),
    "event level over sessions": (
        {"quantile_type": "event", "source": events_node(None, math="unique_session")},
        messages.EVENT_QUANTILE_NEEDS_VALUE,
    ),
    "event level over active days": (
        {"quantile_type": "event", "source": events_node("purchase", math="dau")},
        messages.EVENT_QUANTILE_NEEDS_VALUE,
    ),
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


def test_breakdowns_of_a_quantile_are_a_400(api_client, project):
    """A quantile is no sum: segments beyond the top ones could not be grouped, nor add up to the headline."""
    experiment = launched(project)
    change, option = {"breakdownFilter": {"breakdowns": [{"property": "$browser"}]}}, "breakdowns on quantile metrics"
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
