"""Timeseries services: recalculation requests (§4.9), the backfill a worker runs, reading results (§4.13),
and the scheduled jobs. Tasks run in-process here; tests/test_celery_worker.py runs them in a real worker."""

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import DataError, OperationalError, connection
from django.utils import timezone

from events.clickhouse.client import ClickHouseError, clickhouse_client
from events.clickhouse.schema import EVENTS_TABLE
from events.models import Event
from experiments import messages
from experiments.metrics.days import day_end, days_from, local_day
from experiments.models import (
    ExperimentMetricResult,
    ExperimentTimeseriesRecalculation,
    MetricResultStatus,
    RecalculationStatus,
)
from experiments.results.backfill import metric_result_upsert, timeseries_recalculation_run
from experiments.results.current import metric_results_as_of
from experiments.results.daily import daily_results_compute, stuck_recalculation_ids, timeseries_experiment_ids
from experiments.results.requests import recalculation_response, timeseries_recalculation_request
from experiments.results.timeseries import timeseries_results_get
from experiments_api.exceptions import DomainError
from tests.factories import SavedMetricFactory
from tests.metric_reference import RawEvent, Setup, reference_statistics, sample_identified_events
from tests.test_metric_aggregation import (
    CASES,
    FLAG_KEY,
    NEW_YORK,
    TEST_ACCOUNT_FILTERS,
    day_boundaries,
    engine_fields,
    events_node,
    funnel,
    make_experiment,
    mean,
    store,
)
from tests.test_metric_aggregation import START as IDENTIFIED_START
from tests.test_person_metrics import ingest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_store")]

TOKYO = "Asia/Tokyo"
START = dt.datetime(2025, 2, 1, 2, 0, tzinfo=dt.UTC)  # 11:00 in Tokyo
DAYS = 5
METRIC = {**mean(events_node("purchase", math="sum", math_property="amount")), "uuid": "metric-1"}
FINGERPRINT = "f" * 64


def populated_experiment(**extra):
    """Five local days (Tokyo) with 120 units, purchases spread over them."""
    experiment = make_experiment(timezone=TOKYO, start=START, end=START + dt.timedelta(days=DAYS - 1), **extra)
    events = []
    for number in range(120):
        unit, variant = f"unit-{number}", ("control", "test")[number % 2]
        exposed_at = START + dt.timedelta(hours=number % 90)
        flag = {"$feature_flag": "checkout-flow", "$feature_flag_response": variant}
        events.append(RawEvent("$feature_flag_called", unit, exposed_at, flag))
        for purchase in range(number % 4):
            at = exposed_at + dt.timedelta(hours=7 * purchase + 1)
            events.append(RawEvent("purchase", unit, at, {"amount": number % 7 + purchase}))
            events.append(RawEvent("$pageview", unit, at - dt.timedelta(minutes=5)))
    store(experiment.project, events)
    return experiment


def local_days(experiment) -> list[dt.date]:
    tz = experiment.project.tzinfo
    return days_from(local_day(experiment.start_date, tz), local_day(experiment.end_date, tz))


def stored(experiment, metric_uuid="metric-1", fingerprint=FINGERPRINT) -> list[ExperimentMetricResult]:
    return list(
        ExperimentMetricResult.objects.filter(
            experiment=experiment, metric_uuid=metric_uuid, fingerprint=fingerprint
        ).order_by("query_to")
    )


def request(experiment, metric=METRIC, fingerprint=FINGERPRINT, capture=None):
    if capture is None:
        return timeseries_recalculation_request(experiment=experiment, metric=metric, fingerprint=fingerprint)
    with capture(execute=True):
        return timeseries_recalculation_request(experiment=experiment, metric=metric, fingerprint=fingerprint)


def test_a_recalculation_stores_one_cumulative_result_per_local_day(django_capture_on_commit_callbacks):
    experiment = populated_experiment()
    recalculation, created = request(experiment, capture=django_capture_on_commit_callbacks)

    assert created
    recalculation.refresh_from_db()
    days = local_days(experiment)
    assert (recalculation.status, recalculation.last_successful_date) == (RecalculationStatus.COMPLETED, days[-1])
    rows = stored(experiment)
    tz = experiment.project.tzinfo
    boundaries = [day_end(day, tz) for day in days]
    assert [row.query_to for row in rows] == boundaries
    assert all(row.status == MetricResultStatus.COMPLETED and row.query_from == START for row in rows)
    assert [row.result for row in rows] == metric_results_as_of(
        experiment=experiment, metric=METRIC, boundaries=boundaries
    )
    samples = [row.result["baseline"]["number_of_samples"] for row in rows]
    assert samples == sorted(samples) and samples[0] < samples[-1] == 60


def test_a_running_experiment_is_computed_through_today():
    experiment = make_experiment(timezone=TOKYO, start=timezone.now() - dt.timedelta(days=2))
    recalculation, _ = request(experiment)
    timeseries_recalculation_run(recalculation_id=recalculation.pk)
    tz = experiment.project.tzinfo
    first, today = local_day(experiment.start_date, tz), timezone.now().astimezone(tz).date()
    assert [row.query_to for row in stored(experiment)] == [day_end(day, tz) for day in days_from(first, today)]


def test_a_request_is_idempotent_while_one_is_pending(django_capture_on_commit_callbacks):
    experiment = populated_experiment()
    with django_capture_on_commit_callbacks() as callbacks:
        first, created = request(experiment)
    assert created and len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        second, created_again = request(experiment, metric={**METRIC, "name": "renamed"})
    assert (second.pk, created_again, callbacks) == (first.pk, False, [])
    assert second.metric == METRIC
    assert recalculation_response(second) == {
        "id": str(first.pk),
        "experiment_id": experiment.pk,
        "metric_uuid": "metric-1",
        "fingerprint": FINGERPRINT,
        "status": "pending",
        "created_at": first.created_at.isoformat(),
    }
    assert recalculation_response(second)["created_at"].endswith("+00:00")


def test_a_new_request_replaces_the_stored_results_of_that_fingerprint(django_capture_on_commit_callbacks):
    experiment = populated_experiment()
    request(experiment, capture=django_capture_on_commit_callbacks)
    other_query_to = START + dt.timedelta(days=1)
    metric_result_upsert(
        experiment=experiment, metric_uuid="metric-1", fingerprint="other", query_to=other_query_to, result={}
    )
    with django_capture_on_commit_callbacks() as callbacks:
        recalculation, created = request(experiment)
    assert created and stored(experiment) == []
    assert [row.query_to for row in stored(experiment, fingerprint="other")] == [other_query_to]
    callbacks[0]()
    assert len(stored(experiment)) == DAYS


def test_an_experiment_that_has_not_started_cannot_be_recalculated():
    experiment = make_experiment(start=None)
    with pytest.raises(DomainError) as raised:
        request(experiment)
    assert (
        raised.value.message
        == messages.TIMESERIES_NOT_STARTED
        == "Cannot recalculate timeseries for experiment that hasn't started"
    )
    assert not ExperimentTimeseriesRecalculation.objects.exists()


def test_a_retry_resumes_after_the_last_saved_day():
    experiment = populated_experiment()
    recalculation, _ = request(experiment)
    days = local_days(experiment)
    tz = experiment.project.tzinfo
    # A previous run saved two days, then failed.
    for day in days[:2]:
        metric_result_upsert(
            experiment=experiment,
            metric_uuid="metric-1",
            fingerprint=FINGERPRINT,
            query_to=day_end(day, tz),
            result={"saved_by": "previous run"},
        )
    ExperimentTimeseriesRecalculation.objects.filter(pk=recalculation.pk).update(
        status=RecalculationStatus.FAILED, last_successful_date=days[1], error_message="connection lost"
    )

    timeseries_recalculation_run(recalculation_id=recalculation.pk)

    recalculation.refresh_from_db()
    assert (recalculation.status, recalculation.last_successful_date, recalculation.error_message) == (
        RecalculationStatus.COMPLETED,
        days[-1],
        None,
    )
    results = [row.result for row in stored(experiment)]
    assert results[:2] == [{"saved_by": "previous run"}] * 2
    assert all("baseline" in result for result in results[2:]) and len(results) == DAYS


def test_running_a_completed_recalculation_again_changes_nothing(django_capture_on_commit_callbacks):
    experiment = populated_experiment()
    recalculation, _ = request(experiment, capture=django_capture_on_commit_callbacks)
    before = [(row.pk, row.updated_at) for row in stored(experiment)]
    timeseries_recalculation_run(recalculation_id=recalculation.pk)
    assert [(row.pk, row.updated_at) for row in stored(experiment)] == before


def test_a_metric_the_engine_cannot_compute_fails_the_recalculation_with_the_reason():
    experiment = populated_experiment()
    metric = {**mean(events_node("purchase", math="unique_users")), "uuid": "metric-1"}
    recalculation, _ = request(experiment, metric=metric)

    timeseries_recalculation_run(recalculation_id=recalculation.pk)

    recalculation.refresh_from_db()
    message = messages.UNSUPPORTED_METRIC.format(option="math 'unique_users'")
    assert (recalculation.status, recalculation.error_message) == (RecalculationStatus.FAILED, message)
    results = timeseries_results_get(experiment=experiment, metric_uuid="metric-1", fingerprint=FINGERPRINT)
    first_day = START.date().isoformat()
    assert (results["status"], results["errors"]) == ("failed", {first_day: message})


def test_an_unexpected_error_fails_the_recalculation_and_propagates_for_a_retry(event_store):
    experiment = populated_experiment()
    if event_store == "postgresql":
        # A numeric string beyond double precision makes PostgreSQL's cast fail: the query itself errors.
        store(experiment.project, [RawEvent("purchase", "unit-1", START + dt.timedelta(days=1), {"amount": "1e999"})])
        error_type = DataError
    elif event_store == "sqlite":
        # SQLite reads that string as infinity; a missing table (dropped inside the test's transaction) fails instead.
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {Event._meta.db_table}")
        error_type = OperationalError
    else:
        # ClickHouse reads that string as infinity too; a missing table makes its query fail instead.
        client = clickhouse_client()
        client.command(f"DROP TABLE {client.database}.{EVENTS_TABLE}")
        error_type = ClickHouseError
    recalculation, _ = request(experiment)
    with pytest.raises(error_type) as raised:
        timeseries_recalculation_run(recalculation_id=recalculation.pk)
    recalculation.refresh_from_db()
    assert (recalculation.status, recalculation.error_message) == (RecalculationStatus.FAILED, str(raised.value))
    assert [(row.status, row.error_message) for row in stored(experiment)] == [
        (MetricResultStatus.FAILED, str(raised.value))
    ]


def test_a_failed_recalculation_superseded_by_a_new_request_is_not_resumed():
    experiment = populated_experiment()
    old = ExperimentTimeseriesRecalculation.objects.create(
        project=experiment.project,
        experiment=experiment,
        metric=METRIC,
        fingerprint=FINGERPRINT,
        status=RecalculationStatus.FAILED,
    )
    new, created = request(experiment)
    assert created
    timeseries_recalculation_run(recalculation_id=old.pk)
    old.refresh_from_db()
    assert old.status == RecalculationStatus.FAILED and stored(experiment) == []


def test_a_redelivered_task_does_not_run_beside_a_live_one_but_takes_over_a_stalled_one(settings):
    experiment = populated_experiment()
    recalculation, _ = request(experiment)
    ExperimentTimeseriesRecalculation.objects.filter(pk=recalculation.pk).update(
        status=RecalculationStatus.IN_PROGRESS, updated_at=timezone.now() - dt.timedelta(minutes=10)
    )

    timeseries_recalculation_run(recalculation_id=recalculation.pk)

    recalculation.refresh_from_db()
    assert (recalculation.status, recalculation.last_successful_date) == (RecalculationStatus.IN_PROGRESS, None)
    assert stored(experiment) == []

    stalled = timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) - dt.timedelta(minutes=6)
    ExperimentTimeseriesRecalculation.objects.filter(pk=recalculation.pk).update(updated_at=stalled)

    timeseries_recalculation_run(recalculation_id=recalculation.pk)

    recalculation.refresh_from_db()
    days = local_days(experiment)
    assert (recalculation.status, recalculation.last_successful_date) == (RecalculationStatus.COMPLETED, days[-1])
    assert len(stored(experiment)) == DAYS


def results(experiment, metric_uuid="metric-1"):
    return timeseries_results_get(experiment=experiment, metric_uuid=metric_uuid, fingerprint=FINGERPRINT)


def test_results_of_a_completed_recalculation(django_capture_on_commit_callbacks):
    experiment = populated_experiment()
    request(experiment, capture=django_capture_on_commit_callbacks)
    rows = stored(experiment)
    body = results(experiment)
    utc_days = [day.isoformat() for day in days_from(START.date(), experiment.end_date.date())]
    assert body == {
        "experiment_id": experiment.pk,
        "metric_uuid": "metric-1",
        "status": "completed",
        "timeseries": dict(zip(utc_days, [row.result for row in rows], strict=True)),
        "errors": None,
        "computed_at": max(row.completed_at for row in rows).isoformat(),
        "created_at": rows[0].created_at.isoformat(),
        "updated_at": rows[-1].updated_at.isoformat(),
        "recalculation_status": None,
        "recalculation_created_at": None,
    }
    assert list(body["timeseries"]) == utc_days and body["computed_at"].endswith("+00:00")


def test_results_before_any_computation_are_pending_with_every_day_null():
    experiment = populated_experiment()
    recalculation, _ = request(experiment)
    body = results(experiment)
    assert body["status"] == "pending"
    assert body["timeseries"] == dict.fromkeys(
        [day.isoformat() for day in days_from(START.date(), experiment.end_date.date())]
    )
    assert (body["created_at"], body["updated_at"]) == (
        experiment.created_at.isoformat(),
        experiment.updated_at.isoformat(),
    )
    assert (body["recalculation_status"], body["recalculation_created_at"]) == (
        "pending",
        recalculation.created_at.isoformat(),
    )


def test_results_assign_rows_to_local_days_and_report_partial_and_failed_days():
    experiment = make_experiment(
        timezone=TOKYO, start=dt.datetime(2025, 2, 1, tzinfo=dt.UTC), end=dt.datetime(2025, 2, 3, tzinfo=dt.UTC)
    )
    tz = experiment.project.tzinfo

    def row(local_day: dt.date, status, result=None, error=None, **extra):
        ExperimentMetricResult.objects.create(
            experiment=experiment,
            metric_uuid="metric-1",
            fingerprint=FINGERPRINT,
            query_to=day_end(local_day, tz),
            status=status,
            result=result,
            error_message=error,
            completed_at=timezone.now(),
            **extra,
        )

    with_sessions = {
        "baseline": {"key": "control", "step_sessions": [1]},
        "variant_results": [{"key": "test", "step_sessions": [2]}],
        "step_sessions": [],
    }
    row(dt.date(2025, 2, 1), MetricResultStatus.COMPLETED, result=with_sessions)
    row(dt.date(2025, 2, 2), MetricResultStatus.FAILED, error="Not enough data")
    row(dt.date(2025, 2, 3), MetricResultStatus.PENDING)
    body = results(experiment)
    assert body["timeseries"] == {
        "2025-02-01": {"baseline": {"key": "control"}, "variant_results": [{"key": "test"}]},
        "2025-02-02": None,
        "2025-02-03": None,
    }
    assert (body["status"], body["errors"]) == ("partial", {"2025-02-02": "Not enough data"})

    ExperimentMetricResult.objects.filter(status=MetricResultStatus.COMPLETED).delete()
    assert results(experiment)["status"] == "failed"


def test_results_of_an_experiment_that_has_not_started_are_refused():
    with pytest.raises(DomainError) as raised:
        results(make_experiment(start=None))
    assert raised.value.message == messages.EXPERIMENT_NOT_STARTED == "Experiment has not been started yet"


def test_daily_results_cover_every_metric_with_a_uuid():
    experiment = populated_experiment(scheduling_config={"timeseries": True})
    experiment.end_date = None
    experiment.metrics = [METRIC, mean(events_node("purchase"))]
    experiment.metrics_secondary = [{**funnel(events_node("$pageview"), events_node("purchase")), "uuid": "funnel"}]
    experiment.save()
    saved = SavedMetricFactory(
        project=experiment.project, query={**mean(events_node("purchase", math="unique_users")), "uuid": "saved"}
    )
    experiment.saved_metric_links.create(saved_metric=saved, metadata={"type": "primary"})

    daily_results_compute(experiment_id=experiment.pk)

    rows = {row.metric_uuid: row for row in ExperimentMetricResult.objects.filter(experiment=experiment)}
    assert set(rows) == {"metric-1", "funnel", "saved"}
    assert rows["funnel"].status == MetricResultStatus.COMPLETED
    assert rows["funnel"].result["baseline"]["number_of_samples"] == 60
    assert (rows["saved"].status, rows["saved"].error_message) == (
        MetricResultStatus.FAILED,
        messages.UNSUPPORTED_METRIC.format(option="math 'unique_users'"),
    )


def test_the_daily_job_selects_running_opted_in_experiments_launched_in_the_last_30_days():
    now = timezone.now()
    chosen = make_experiment(start=now - dt.timedelta(days=3), scheduling_config={"timeseries": True})
    make_experiment(start=now - dt.timedelta(days=3), scheduling_config={"timeseries": False})
    make_experiment(start=now - dt.timedelta(days=3))
    make_experiment(start=now - dt.timedelta(days=40), scheduling_config={"timeseries": True})
    make_experiment(start=now - dt.timedelta(days=3), end=now, scheduling_config={"timeseries": True})
    make_experiment(start=now - dt.timedelta(days=3), scheduling_config={"timeseries": True}, deleted=True)
    make_experiment(start=None, scheduling_config={"timeseries": True})
    assert timeseries_experiment_ids() == [chosen.pk]


def test_stalled_and_long_pending_recalculations_are_stuck_and_a_pending_one_is_requeued_once_a_period(settings):
    experiment = make_experiment()
    long_ago = timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) - dt.timedelta(minutes=6)
    pending_for = dt.timedelta(seconds=settings.RECALCULATION_PENDING_REQUEUE_SECONDS)

    def recalculation(fingerprint, status, touched_at):
        created = ExperimentTimeseriesRecalculation.objects.create(
            project=experiment.project, experiment=experiment, metric=METRIC, fingerprint=fingerprint, status=status
        )
        ExperimentTimeseriesRecalculation.objects.filter(pk=created.pk).update(
            created_at=touched_at, updated_at=touched_at
        )
        return created.pk

    stuck = recalculation("a", RecalculationStatus.IN_PROGRESS, long_ago)
    lost = recalculation("b", RecalculationStatus.PENDING, long_ago)
    recalculation("c", RecalculationStatus.IN_PROGRESS, timezone.now())
    recalculation("d", RecalculationStatus.FAILED, long_ago)
    recalculation("e", RecalculationStatus.COMPLETED, long_ago)
    dropped = recalculation("f", RecalculationStatus.PENDING, timezone.now() - pending_for - dt.timedelta(seconds=1))
    recalculation("g", RecalculationStatus.PENDING, timezone.now() - pending_for + dt.timedelta(seconds=30))

    assert sorted(stuck_recalculation_ids()) == sorted([stuck, lost, dropped])
    # The pending ones were touched when requeued: their next message is one period away; the dead lease stays.
    assert stuck_recalculation_ids() == [stuck]


# Identified traffic: every third unit logs in mid-experiment (tests.metric_reference.sample_identified_events), its
# exposure under the anonymous id and its later conversions under the identified one.
IDENTIFIED_KINDS = ("count", "ordered funnel", "ratio", "retention, days, first seen")
IDENTIFIED_DAYS = 8
# An end date on the last of those local days (New York): the backfill stores one row per day.
IDENTIFIED_END = day_end(
    local_day(IDENTIFIED_START, ZoneInfo(NEW_YORK)) + dt.timedelta(days=IDENTIFIED_DAYS - 1), ZoneInfo(NEW_YORK)
) - dt.timedelta(microseconds=1)


def identified_traffic(*, merges: str, end: dt.datetime | None = None):
    """The sample ingested with its `$identify` events after every event they concern ("last": the overrides do the
    resolving) or in time order ("in order": later events already land on the merged person)."""
    experiment = make_experiment(end=end, exposure_criteria={"filterTestAccounts": True})
    events, identifies, persons = sample_identified_events(7, start=IDENTIFIED_START, flag_key=FLAG_KEY)
    if merges == "last":
        ingest(experiment.project, events)
        ingest(experiment.project, identifies)
    else:
        ingest(experiment.project, sorted(events + identifies, key=lambda event: event.timestamp))
    setup = Setup(
        flag_key=FLAG_KEY,
        variants=("control", "test"),
        start=IDENTIFIED_START,
        end=end,
        tz=ZoneInfo(NEW_YORK),
        test_account_filters=tuple(TEST_ACCOUNT_FILTERS),
        persons=persons,
    )
    return experiment, events + identifies, setup


def assert_result_matches_reference(result: dict, events, setup: Setup, metric: dict, query_to: dt.datetime) -> None:
    """A stored result's per-variant sums are the reference's as of `query_to`, counting persons."""
    expected = reference_statistics(events, setup, metric, query_to)
    rows = {row["key"]: row for row in [result["baseline"], *result["variant_results"]]}
    assert set(rows) == set(setup.variants)
    for variant, row in rows.items():
        actual = engine_fields(row)
        wanted = {name: value for name, value in expected[variant].items() if name in actual}
        assert actual == pytest.approx(wanted, rel=1e-9, abs=1e-9), f"{query_to}, {variant}"


@pytest.mark.parametrize("merges", ["last", "in order"])
@pytest.mark.parametrize("kind", IDENTIFIED_KINDS)
def test_a_recalculation_on_identified_traffic_stores_the_reference_of_every_day(
    kind, merges, django_capture_on_commit_callbacks
):
    metric = {**CASES[kind][0], "uuid": "metric-1"}
    experiment, events, setup = identified_traffic(merges=merges, end=IDENTIFIED_END)
    boundaries = day_boundaries(experiment, IDENTIFIED_DAYS)

    request(experiment, metric=metric, capture=django_capture_on_commit_callbacks)

    rows = stored(experiment)
    assert [row.query_to for row in rows] == boundaries
    assert all(row.status == MetricResultStatus.COMPLETED for row in rows)
    for row in rows:
        assert_result_matches_reference(row.result, events, setup, metric, row.query_to)
    samples = [row.result["baseline"]["number_of_samples"] for row in rows]
    assert samples[0] < samples[-1]


def test_counting_distinct_ids_would_store_other_numbers_for_identified_traffic(django_capture_on_commit_callbacks):
    """The backfill really resolves persons: the reference without them disagrees with what it stored."""
    metric = {**CASES["count"][0], "uuid": "metric-1"}
    experiment, events, setup = identified_traffic(merges="last", end=IDENTIFIED_END)
    request(experiment, metric=metric, capture=django_capture_on_commit_callbacks)
    final = stored(experiment)[-1]

    with pytest.raises(AssertionError):
        assert_result_matches_reference(
            final.result, events, dataclasses.replace(setup, persons={}), metric, final.query_to
        )


@pytest.mark.parametrize("merges", ["last", "in order"])
def test_the_daily_job_on_identified_traffic_stores_the_reference_of_every_metric(merges):
    experiment, events, setup = identified_traffic(merges=merges)
    metrics = [{**CASES[kind][0], "uuid": kind} for kind in IDENTIFIED_KINDS]
    experiment.metrics = metrics
    experiment.scheduling_config = {"timeseries": True}
    experiment.save()

    daily_results_compute(experiment_id=experiment.pk)

    rows = {row.metric_uuid: row for row in ExperimentMetricResult.objects.filter(experiment=experiment)}
    assert set(rows) == set(IDENTIFIED_KINDS)
    for metric in metrics:
        row = rows[metric["uuid"]]
        assert row.status == MetricResultStatus.COMPLETED, row.error_message
        assert_result_matches_reference(row.result, events, setup, metric, row.query_to)
