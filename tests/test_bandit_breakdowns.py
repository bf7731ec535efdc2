"""Breakdowns of a bandit's results: every segment weighted over the reweight periods by its own units per period,
with the same segments kept in every period, against a direct computation from the unit values."""

import datetime as dt

import numpy as np
import pytest

from experiments.metrics.breakdowns import BREAKDOWN_OTHER, MAX_SEGMENTS
from experiments.results.current import current_metric_result
from experiments.services.bandits import bandit_reweight
from experiments.stats import SampleMean, compute_metric_result
from tests.metric_reference import RawEvent
from tests.test_bandits import DECISION_METRIC, START, direct_weighted, make_bandit, percentages, unit_values
from tests.test_metric_aggregation import events_node, mean, store

# PostgreSQL only: breakdowns in ClickHouse's dialect are another change (json_text_array).
pytestmark = pytest.mark.django_db

BY_BROWSER = {
    **mean(events_node("purchase")),
    "uuid": "purchases-by-browser",
    "breakdownFilter": {"breakdowns": [{"property": "$browser"}]},
}
REWEIGHT_AT = START + dt.timedelta(hours=24)


def units(experiment, *, variant: str, browser: str, count: int, buyers: int, at: dt.datetime, prefix: str) -> list:
    """`count` units exposed to `variant` on `browser` at `at`, the first `buyers` buying an hour later."""
    events = []
    for index in range(count):
        distinct_id = f"{prefix}-{browser}-{variant}-{index}"
        flag = {"$feature_flag": experiment.feature_flag.key, "$feature_flag_response": variant, "$browser": browser}
        events.append(RawEvent("$feature_flag_called", distinct_id, at, flag))
        if index < buyers:
            events.append(RawEvent("purchase", distinct_id, at + dt.timedelta(hours=1)))
    return events


def populate(experiment, periods: list[dict[tuple[str, str], tuple[int, int]]]) -> None:
    """Period 0 before the reweight (which the decision metric's data drives), period 1 after it."""
    starts = [START + dt.timedelta(hours=1), REWEIGHT_AT + dt.timedelta(hours=2)]
    for index, (period, at) in enumerate(zip(periods, starts, strict=True)):
        if index == 1:
            bandit_reweight(experiment=experiment, now=REWEIGHT_AT)
        store(
            experiment.project,
            [
                event
                for (browser, variant), (count, buyers) in period.items()
                for event in units(
                    experiment, variant=variant, browser=browser, count=count, buyers=buyers, at=at, prefix=f"p{index}"
                )
            ],
        )
    experiment.refresh_from_db()


def segment_periods(periods, browsers) -> list[dict[str, np.ndarray]]:
    """Per period, each arm's unit values over the units of `browsers`."""
    return [
        {
            variant: np.concatenate(
                [unit_values(*period[(browser, variant)]) for browser in browsers if (browser, variant) in period]
                or [np.array([])]
            )
            for variant in ("control", "test")
        }
        for period in periods
    ]


def assert_weighted(item: dict, periods: list[dict[str, np.ndarray]]) -> None:
    rows = {"control": item["baseline"], "test": item["variant_results"][0]}
    present = [period for period in periods if all(len(values) for values in period.values())]
    for arm, row in rows.items():
        mean_value, variance = direct_weighted(present, arm)
        statistic = SampleMean(n=row["number_of_samples"], sum=row["sum"], sum_squares=row["sum_squares"])
        assert row["number_of_samples"] == sum(len(period[arm]) for period in periods)
        assert statistic.mean == pytest.approx(mean_value, abs=1e-9)
        assert statistic.variance / statistic.n == pytest.approx(variance, abs=1e-9)


def test_each_segment_of_a_bandit_is_weighted_over_the_periods_by_its_own_units(project):
    experiment = make_bandit(project, metrics=[DECISION_METRIC, BY_BROWSER])
    periods = [
        {
            ("chrome", "control"): (120, 30),
            ("chrome", "test"): (120, 60),
            ("safari", "control"): (60, 30),
            ("safari", "test"): (60, 20),
        },
        {
            ("chrome", "control"): (10, 5),
            ("chrome", "test"): (300, 60),
            ("safari", "control"): (15, 3),
            ("safari", "test"): (200, 100),
        },
    ]
    populate(experiment, periods)
    assert percentages(experiment) != {"control": 50, "test": 50}

    result = current_metric_result(experiment=experiment, metric=BY_BROWSER)

    items = {tuple(item["breakdown_value"]): item for item in result["breakdown_results"]}
    assert list(items) == [("chrome",), ("safari",)]
    for browser in ("chrome", "safari"):
        item = items[(browser,)]
        assert item["exploratory"] is True
        assert_weighted(item, segment_periods(periods, [browser]))
        rows = [{**item["baseline"]}, *(dict(row) for row in item["variant_results"])]
        expected = compute_metric_result(
            [{key: row[key] for key in ("key", "number_of_samples", "sum", "sum_squares")} for row in rows],
            metric_type="mean",
            stats_config=experiment.stats_config,
        )
        assert item["variant_results"][0]["chance_to_win"] == pytest.approx(
            expected["variant_results"][0]["chance_to_win"], abs=1e-12
        )
    # The headline stays the all-segments analysis, weighted by every unit of each period.
    assert_weighted(result, segment_periods(periods, ["chrome", "safari"]))
    # The segment weights are the segment's own: chrome's test share differs from the headline's.
    chrome = SampleMean(
        items[("chrome",)]["variant_results"][0]["number_of_samples"],
        items[("chrome",)]["variant_results"][0]["sum"],
        items[("chrome",)]["variant_results"][0]["sum_squares"],
    )
    headline_weights = segment_periods(periods, ["chrome", "safari"])
    wrong_mean, _ = direct_weighted(headline_weights, "test")
    assert chrome.mean != pytest.approx(wrong_mean, abs=1e-3)


def test_every_period_keeps_the_same_segments_and_groups_the_rest(project):
    """24 browsers, each in one period only: the top 20 by units over both periods are kept in both, the other four
    are one segment weighted over the periods like any other."""
    experiment = make_bandit(project, metrics=[DECISION_METRIC, BY_BROWSER])
    first = {f"b{index:02d}": 20 + index for index in range(12)}
    second = {f"b{index:02d}": 20 + index for index in range(12, 24)}
    periods = [
        {
            **{
                (browser, variant): (count, count // 3)
                for browser, count in first.items()
                for variant in ("control", "test")
            },
            # The decision metric needs 100 units an arm to reweight.
            ("decide", "control"): (100, 20),
            ("decide", "test"): (100, 60),
        },
        {
            (browser, variant): (count, count // (2 if variant == "test" else 4))
            for browser, count in second.items()
            for variant in ("control", "test")
        },
    ]
    populate(experiment, periods)

    result = current_metric_result(experiment=experiment, metric=BY_BROWSER)

    totals = {**{browser: 2 * count for browser, count in {**first, **second}.items()}, "decide": 200}
    ranked = sorted(totals, key=lambda browser: (-totals[browser], browser))
    kept, rest = ranked[:MAX_SEGMENTS], ranked[MAX_SEGMENTS:]
    values = [tuple(item["breakdown_value"]) for item in result["breakdown_results"]]
    assert values == [*sorted((browser,) for browser in kept), (BREAKDOWN_OTHER,)]
    items = {tuple(item["breakdown_value"]): item for item in result["breakdown_results"]}
    assert_weighted(items[(BREAKDOWN_OTHER,)], segment_periods(periods, rest))
    for browser in kept:
        assert_weighted(items[(browser,)], segment_periods(periods, [browser]))
