"""`stats_config.multiple_testing`: the experiment-wide correction across every primary metric × test variant
(secondary metrics with `include_secondary`), applied to the stored daily results and to `/query/` when they are
served, checked against the raw p-values recomputed from the stored sums with the stats package."""

import datetime as dt

import pytest

from experiments.definitions.fingerprint import experiment_metric_fingerprint
from experiments.metrics.days import day_end, days_from, local_day
from experiments.models import ExperimentToSavedMetric
from experiments.results.backfill import metric_result_upsert
from experiments.results.current import metric_results_as_of
from experiments.results.timeseries import timeseries_results_get
from experiments.stats import SampleMean, adjust_p_values, frequentist_test
from experiments.stats.multiple_testing import adjusted_confidence_interval
from pages.selectors import experiment_results
from tests.factories import ExperimentFactory, FeatureFlagFactory, SavedMetricFactory
from tests.metric_reference import RawEvent
from tests.test_metric_aggregation import events_node, mean, store

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_store")]

START = dt.datetime(2025, 4, 1, 9, 0, tzinfo=dt.UTC)
DAYS = 3
FLAG_KEY = "checkout-flow"
VARIANTS = ("control", "a", "b")
PURCHASES = {**mean(events_node("purchase")), "uuid": "purchases"}
REVENUE = {**mean(events_node("purchase", math="sum", math_property="amount")), "uuid": "revenue"}
PAGEVIEWS = {**mean(events_node("$pageview")), "uuid": "pageviews"}


def three_arm_experiment(project, multiple_testing: dict | None, **stats_config):
    """Control, a and b (34/33/33) over three days, a and b buying more and spending more than control; purchases
    and revenue are primary, page views secondary."""
    flag = FeatureFlagFactory(
        project=project,
        key=FLAG_KEY,
        filters={
            "groups": [{"properties": [], "rollout_percentage": 100}],
            "multivariate": {
                "variants": [
                    {"key": key, "rollout_percentage": share} for key, share in zip(VARIANTS, (34, 33, 33), strict=True)
                ]
            },
        },
    )
    experiment = ExperimentFactory(
        project=project,
        feature_flag=flag,
        start_date=START,
        end_date=START + dt.timedelta(days=DAYS - 1, hours=12),
        metrics=[PURCHASES, REVENUE],
        metrics_secondary=[PAGEVIEWS],
        stats_config={"method": "frequentist", "multiple_testing": multiple_testing, **stats_config},
    )
    events = []
    for number in range(600):
        unit, variant = f"unit-{number}", VARIANTS[number % 3]
        exposed_at = START + dt.timedelta(minutes=5 * number)
        flag_call = {"$feature_flag": FLAG_KEY, "$feature_flag_response": variant}
        events.append(RawEvent("$feature_flag_called", unit, exposed_at, flag_call))
        lift = VARIANTS.index(variant)
        for purchase in range((number // 3) % 3 + (lift if number % 4 == 0 else 0)):
            at = exposed_at + dt.timedelta(minutes=30 + purchase)
            events.append(RawEvent("purchase", unit, at, {"amount": (number % 7) + 2 * lift}))
        events.append(RawEvent("$pageview", unit, exposed_at + dt.timedelta(minutes=1)))
    store(project, events)
    return experiment


def day_ends(experiment) -> list[dt.datetime]:
    tz = experiment.project.tzinfo
    first, last = local_day(experiment.start_date, tz), local_day(experiment.end_date, tz)
    return [day_end(day, tz) for day in days_from(first, last)]


def store_days(experiment, metric: dict) -> None:
    """Every day's result of `metric`, stored as a timeseries recalculation stores it."""
    boundaries = day_ends(experiment)
    for boundary, result in zip(
        boundaries, metric_results_as_of(experiment=experiment, metric=metric, boundaries=boundaries), strict=True
    ):
        metric_result_upsert(
            experiment=experiment,
            metric_uuid=metric["uuid"],
            fingerprint=experiment_metric_fingerprint(experiment, metric),
            query_to=boundary,
            result=result,
        )


def served(experiment, metric: dict) -> dict[str, dict]:
    series = timeseries_results_get(
        experiment=experiment,
        metric_uuid=metric["uuid"],
        fingerprint=experiment_metric_fingerprint(experiment, metric),
    )
    return series["timeseries"]


def raw_p_value(result: dict, key: str) -> float:
    """The Welch p-value of variant `key` against control, from the result's stored sums."""
    baseline = result["baseline"]
    variant = next(row for row in result["variant_results"] if row["key"] == key)
    control = SampleMean(baseline["number_of_samples"], baseline["sum"], baseline["sum_squares"])
    treatment = SampleMean(variant["number_of_samples"], variant["sum"], variant["sum_squares"])
    return frequentist_test(treatment, control).p_value


def variant(result: dict, key: str) -> dict:
    return next(row for row in result["variant_results"] if row["key"] == key)


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_stored_daily_results_are_served_corrected_across_metrics_and_variants(project, method):
    experiment = three_arm_experiment(project, {"method": method})
    for metric in (PURCHASES, REVENUE, PAGEVIEWS):
        store_days(experiment, metric)

    purchases, revenue = served(experiment, PURCHASES), served(experiment, REVENUE)

    assert list(purchases) == list(revenue) and len(purchases) == DAYS
    for day in purchases:
        family = [(purchases[day], key) for key in ("a", "b")] + [(revenue[day], key) for key in ("a", "b")]
        raw = [raw_p_value(result, key) for result, key in family]
        expected = adjust_p_values(raw, method)
        for (result, key), raw_p, adjusted in zip(family, raw, expected, strict=True):
            row = variant(result, key)
            assert row["p_value"] == pytest.approx(raw_p, rel=1e-9)
            assert row["p_value_adjusted"] == pytest.approx(adjusted, rel=1e-9)
            assert row["significant"] == (adjusted < 0.05)
            interval = adjusted_confidence_interval(row["effect"], tuple(row["confidence_interval"]), adjusted)
            assert row["confidence_interval_adjusted"] == pytest.approx(list(interval), rel=1e-9)
            assert row["confidence_interval_adjusted"][0] <= row["confidence_interval"][0]
        assert purchases[day]["experiment_wide_correction"] == {
            "method": method,
            "tests": 4,
            "metric_uuids": ["purchases", "revenue"],
            "missing_metric_uuids": [],
        }
    last = max(purchases)
    assert any(variant(purchases[last], key)["p_value"] < 0.05 for key in ("a", "b"))
    # The secondary metric is not in the family.
    pageviews = served(experiment, PAGEVIEWS)
    assert all("experiment_wide_correction" not in result for result in pageviews.values())
    assert all("p_value_adjusted" not in row for result in pageviews.values() for row in result["variant_results"])


def test_a_family_metric_without_a_result_that_day_counts_as_p_equal_to_one(project):
    experiment = three_arm_experiment(project, {"method": "holm"})
    store_days(experiment, PURCHASES)

    purchases = served(experiment, PURCHASES)

    for result in purchases.values():
        raw = [raw_p_value(result, key) for key in ("a", "b")]
        expected = adjust_p_values([*raw, 1.0, 1.0], "holm")[:2]
        assert [variant(result, key)["p_value_adjusted"] for key in ("a", "b")] == pytest.approx(expected, rel=1e-9)
        assert result["experiment_wide_correction"]["missing_metric_uuids"] == ["revenue"]
        assert result["experiment_wide_correction"]["tests"] == 4


def test_include_secondary_adds_the_secondary_metrics_and_saved_metrics_join_by_their_link(project):
    saved = SavedMetricFactory(project=project, query={**mean(events_node("$pageview", math="dau")), "uuid": "saved"})
    experiment = three_arm_experiment(project, {"method": "holm", "include_secondary": True})
    ExperimentToSavedMetric.objects.create(experiment=experiment, saved_metric=saved, metadata={"type": "primary"})
    for metric in (PURCHASES, REVENUE, PAGEVIEWS):
        store_days(experiment, metric)

    purchases, revenue, pageviews = (served(experiment, metric) for metric in (PURCHASES, REVENUE, PAGEVIEWS))

    day = max(purchases)
    block = purchases[day]["experiment_wide_correction"]
    assert block["metric_uuids"] == ["purchases", "revenue", "saved", "pageviews"]
    assert (block["tests"], block["missing_metric_uuids"]) == (8, ["saved"])
    results = [purchases[day], revenue[day], pageviews[day]]
    raw = [raw_p_value(result, key) for result in results for key in ("a", "b")]
    expected = adjust_p_values([*raw, 1.0, 1.0], "holm")[:6]
    served_adjusted = [variant(result, key)["p_value_adjusted"] for result in results for key in ("a", "b")]
    assert served_adjusted == pytest.approx(expected, rel=1e-9)
    assert pageviews[day]["experiment_wide_correction"] == block


def test_raw_p_values_are_stored_for_the_family_and_the_per_metric_correction_keeps_the_rest(project):
    experiment = three_arm_experiment(project, {"method": "bh"}, multiple_testing_correction="holm")
    boundary = day_ends(experiment)[-1:]

    (family_result,) = metric_results_as_of(experiment=experiment, metric=PURCHASES, boundaries=boundary)
    (secondary_result,) = metric_results_as_of(experiment=experiment, metric=PAGEVIEWS, boundaries=boundary)

    assert [variant(family_result, key)["p_value"] for key in ("a", "b")] == pytest.approx(
        [raw_p_value(family_result, key) for key in ("a", "b")], rel=1e-9
    )
    raw = [raw_p_value(secondary_result, key) for key in ("a", "b")]
    assert [variant(secondary_result, key)["p_value"] for key in ("a", "b")] == pytest.approx(
        adjust_p_values(raw, "holm"), rel=1e-9
    )


def test_the_correction_follows_the_current_settings_without_a_recalculation(project):
    experiment = three_arm_experiment(project, {"method": "holm"})
    for metric in (PURCHASES, REVENUE):
        store_days(experiment, metric)
    day = max(served(experiment, PURCHASES))

    experiment.stats_config = {**experiment.stats_config, "multiple_testing": {"method": "bh"}}
    experiment.save()
    result = served(experiment, PURCHASES)[day]
    revenue = served(experiment, REVENUE)[day]
    raw = [raw_p_value(result, key) for key in ("a", "b")] + [raw_p_value(revenue, key) for key in ("a", "b")]
    assert [variant(result, key)["p_value_adjusted"] for key in ("a", "b")] == pytest.approx(
        adjust_p_values(raw, "bh")[:2], rel=1e-9
    )

    experiment.stats_config = {**experiment.stats_config, "multiple_testing": {"method": None}}
    experiment.save()
    result = served(experiment, PURCHASES)[day]
    assert "experiment_wide_correction" not in result
    assert all("p_value_adjusted" not in row for row in result["variant_results"])


def test_bayesian_results_are_never_corrected(project):
    experiment = three_arm_experiment(project, {"method": "holm"})
    experiment.stats_config = {**experiment.stats_config, "method": "bayesian"}
    experiment.save()
    store_days(experiment, PURCHASES)
    store_days(experiment, REVENUE)

    for result in served(experiment, PURCHASES).values():
        assert "experiment_wide_correction" not in result
        assert {row["method"] for row in result["variant_results"]} == {"bayesian"}


def test_a_one_sided_family_widens_the_finite_end(project):
    experiment = three_arm_experiment(project, {"method": "holm"}, frequentist={"alternative": "greater"})
    for metric in (PURCHASES, REVENUE):
        store_days(experiment, metric)

    result = served(experiment, PURCHASES)[max(served(experiment, PURCHASES))]

    for key in ("a", "b"):
        row = variant(result, key)
        assert row["confidence_interval"][1] is None and row["confidence_interval_adjusted"][1] is None
        lower, _ = adjusted_confidence_interval(
            row["effect"], (row["confidence_interval"][0], float("inf")), row["p_value_adjusted"]
        )
        assert row["confidence_interval_adjusted"][0] == (None if lower == float("-inf") else pytest.approx(lower))


def post_query(client, project, experiment, metric: dict):
    query = {"kind": "ExperimentQuery", "experiment_id": experiment.pk, "metric": metric}
    return client.post(f"/api/projects/{project.pk}/query/", {"query": query}, format="json")


def test_an_experiment_query_is_corrected_with_the_familys_stored_results_of_its_day(api_client, project):
    experiment = three_arm_experiment(project, {"method": "holm"})
    # The experiment has ended: its current result is as of the end date, whose day the stored results share.
    metric_result_upsert(
        experiment=experiment,
        metric_uuid=REVENUE["uuid"],
        fingerprint=experiment_metric_fingerprint(experiment, REVENUE),
        query_to=experiment.end_date,
        result=metric_results_as_of(experiment=experiment, metric=REVENUE, boundaries=[experiment.end_date])[0],
    )

    response = post_query(api_client, project, experiment, PURCHASES)

    assert response.status_code == 200
    body = response.json()
    (revenue,) = metric_results_as_of(experiment=experiment, metric=REVENUE, boundaries=[experiment.end_date])
    raw = [raw_p_value(body, key) for key in ("a", "b")] + [raw_p_value(revenue, key) for key in ("a", "b")]
    assert [variant(body, key)["p_value_adjusted"] for key in ("a", "b")] == pytest.approx(
        adjust_p_values(raw, "holm")[:2], rel=1e-9
    )
    assert body["experiment_wide_correction"]["missing_metric_uuids"] == []
    # A metric outside the family (an ad-hoc one) is served as computed.
    adhoc = post_query(api_client, project, experiment, {**PURCHASES, "uuid": "adhoc"}).json()
    assert "experiment_wide_correction" not in adhoc
    assert [variant(adhoc, key)["p_value"] for key in ("a", "b")] == pytest.approx(
        [variant(body, key)["p_value"] for key in ("a", "b")], rel=1e-9
    )


def test_the_timeseries_endpoint_serves_the_correction(api_client, project):
    experiment = three_arm_experiment(project, {"method": "bh"})
    for metric in (PURCHASES, REVENUE):
        store_days(experiment, metric)

    response = api_client.get(
        f"/api/projects/{project.pk}/experiments/{experiment.pk}/timeseries_results/",
        {"metric_uuid": "revenue", "fingerprint": experiment_metric_fingerprint(experiment, REVENUE)},
    )

    assert response.status_code == 200
    timeseries = response.json()["timeseries"]
    assert timeseries == served(experiment, REVENUE)
    assert all(result["experiment_wide_correction"]["tests"] == 4 for result in timeseries.values())


def test_the_results_page_shows_the_adjusted_p_values(project):
    experiment = three_arm_experiment(project, {"method": "holm"})
    for metric in (PURCHASES, REVENUE):
        store_days(experiment, metric)

    page = experiment_results(experiment=experiment)

    purchases = next(metric for metric in page.metrics if metric.uuid == "purchases")
    latest = served(experiment, PURCHASES)[purchases.latest.day]
    assert [row.p_value for row in purchases.latest.variants] == [
        variant(latest, key)["p_value_adjusted"] for key in ("a", "b")
    ]
