"""Results endpoints of /api/projects/:project_id/experiments/:id/ through the HTTP API: recalculate_timeseries
(api.md §4.9), timeseries_results (§4.13) and the batch metrics_recalculation (lifecycle.md), with real events,
tasks run in-process once the request's transaction would commit, automatic triggers and scopes."""

import datetime as dt

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from events.models import Event
from experiments import messages
from experiments.definitions.fingerprint import experiment_metric_fingerprint
from experiments.metrics.days import day_end
from experiments.models import (
    ExperimentMetricResult,
    ExperimentMetricsRecalculation,
    ExperimentTimeseriesRecalculation,
    MetricResultStatus,
    RecalculationStatus,
    RecalculationTrigger,
)
from experiments.tasks import recalculate_experiment_metric
from tests.factories import ExperimentFactory, ProjectFactory, member_of
from tests.helpers import NOT_A_MEMBER, NOT_FOUND, missing_scope, validation_error
from tests.metric_reference import RawEvent
from tests.test_metric_aggregation import FLAG_KEY, events_node, make_experiment, mean, store

pytestmark = pytest.mark.django_db

UTC = "UTC"
START = dt.datetime(2025, 2, 1, 10, 0, tzinfo=dt.UTC)
END = dt.datetime(2025, 2, 3, 22, 0, tzinfo=dt.UTC)
DAYS = ["2025-02-01", "2025-02-02", "2025-02-03"]
# Units first exposed on each experiment day; every control unit buys once, every test unit twice.
NEW_UNITS = {"control": (4, 2, 3), "test": (3, 5, 1)}
PURCHASES_PER_UNIT = {"control": 1, "test": 2}
SAMPLES_BY_DAY = {"control": [4, 6, 9], "test": [3, 8, 9]}
PURCHASES = {**mean(events_node("purchase")), "uuid": "purchases"}
PAGEVIEWS = {**mean(events_node("$pageview")), "uuid": "pageviews"}
UNSUPPORTED = {**mean(events_node("purchase", math="unique_users")), "uuid": "unsupported"}
FINGERPRINT = "f" * 64


def url(experiment, action: str = "") -> str:
    return f"/api/projects/{experiment.project_id}/experiments/{experiment.pk}/{action}"


def stopped_experiment(**extra):
    """Three UTC days of exposures and purchases, ended on the third day."""
    experiment = make_experiment(timezone=UTC, start=START, end=END, **extra)
    events = []
    for variant, per_day in NEW_UNITS.items():
        for day, count in enumerate(per_day):
            for number in range(count):
                unit, exposed_at = f"{variant}-{day}-{number}", START + dt.timedelta(days=day, hours=1, minutes=number)
                flag = {"$feature_flag": FLAG_KEY, "$feature_flag_response": variant}
                events.append(RawEvent("$feature_flag_called", unit, exposed_at, flag))
                events.extend(
                    RawEvent("purchase", unit, exposed_at + dt.timedelta(minutes=10 * (purchase + 1)))
                    for purchase in range(PURCHASES_PER_UNIT[variant])
                )
    store(experiment.project, events)
    return experiment


@pytest.fixture
def experiment():
    return stopped_experiment(metrics=[PURCHASES], primary_metrics_ordered_uuids=["purchases"])


@pytest.fixture
def client(experiment, make_client):
    return make_client(member_of(experiment.project))


def recalculate(client, experiment, metric=PURCHASES, fingerprint=FINGERPRINT):
    return client.post(url(experiment, "recalculate_timeseries/"), {"metric": metric, "fingerprint": fingerprint})


def timeseries(client, experiment, metric_uuid="purchases", fingerprint=FINGERPRINT):
    return client.get(url(experiment, "timeseries_results/"), {"metric_uuid": metric_uuid, "fingerprint": fingerprint})


def metric_result(experiment, day: str, *, metric_uuid="purchases", fingerprint=FINGERPRINT, **fields):
    """A stored daily row for the UTC day `day` (query_to is that day's exclusive end)."""
    query_to = day_end(dt.date.fromisoformat(day), dt.UTC)
    return ExperimentMetricResult.objects.create(
        experiment=experiment, metric_uuid=metric_uuid, fingerprint=fingerprint, query_to=query_to, **fields
    )


def stored_rows(experiment) -> list[tuple]:
    return list(
        ExperimentMetricResult.objects.filter(experiment=experiment)
        .order_by("metric_uuid", "fingerprint", "query_to")
        .values_list("metric_uuid", "fingerprint", "query_to")
    )


# --- recalculate_timeseries ------------------------------------------------------------------------------------


def test_a_recalculation_request_answers_201_with_the_new_pending_record(client, experiment):
    response = recalculate(client, experiment)

    recalculation = ExperimentTimeseriesRecalculation.objects.get()
    assert response.status_code == 201
    assert response.json() == {
        "id": str(recalculation.pk),
        "experiment_id": experiment.pk,
        "metric_uuid": "purchases",
        "fingerprint": FINGERPRINT,
        "status": "pending",
        "created_at": recalculation.created_at.isoformat(),
    }
    assert response.json()["created_at"].endswith("+00:00")
    assert (recalculation.metric, recalculation.status) == (PURCHASES, RecalculationStatus.PENDING)


def test_a_request_while_one_is_pending_or_in_progress_answers_200_with_it(client, experiment):
    first = recalculate(client, experiment).json()

    again = recalculate(client, experiment, metric={**PURCHASES, "name": "Renamed", "uuid": "renamed"})
    assert (again.status_code, again.json()) == (200, first)
    ExperimentTimeseriesRecalculation.objects.update(status=RecalculationStatus.IN_PROGRESS)
    in_progress = recalculate(client, experiment)
    assert (in_progress.status_code, in_progress.json()) == (200, {**first, "status": "in_progress"})
    assert ExperimentTimeseriesRecalculation.objects.get().metric == PURCHASES

    other_fingerprint = recalculate(client, experiment, fingerprint="e" * 64)
    assert other_fingerprint.status_code == 201 and other_fingerprint.json()["id"] != first["id"]
    ExperimentTimeseriesRecalculation.objects.filter(pk=first["id"]).update(status=RecalculationStatus.COMPLETED)
    after_completion = recalculate(client, experiment)
    assert after_completion.status_code == 201 and after_completion.json()["id"] != first["id"]


def test_a_new_request_deletes_the_stored_results_of_that_metric_and_fingerprint_only(client, experiment):
    for day in DAYS[:2]:
        metric_result(experiment, day, status=MetricResultStatus.COMPLETED, result={})
    metric_result(experiment, DAYS[0], fingerprint="e" * 64, status=MetricResultStatus.COMPLETED, result={})
    metric_result(experiment, DAYS[0], metric_uuid="pageviews", status=MetricResultStatus.COMPLETED, result={})
    kept = [
        ("pageviews", FINGERPRINT, day_end(dt.date(2025, 2, 1), dt.UTC)),
        ("purchases", "e" * 64, day_end(dt.date(2025, 2, 1), dt.UTC)),
    ]

    assert recalculate(client, experiment).status_code == 201
    assert stored_rows(experiment) == kept

    # While that request is pending, another one changes nothing: not even a row stored meanwhile is deleted.
    metric_result(experiment, DAYS[2], status=MetricResultStatus.COMPLETED, result={})
    assert recalculate(client, experiment).status_code == 200
    assert len(stored_rows(experiment)) == 3


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param({"fingerprint": FINGERPRINT}, messages.METRIC_REQUIRED, id="no metric"),
        pytest.param({"metric": None, "fingerprint": FINGERPRINT}, messages.METRIC_REQUIRED, id="null metric"),
        pytest.param({"metric": {}, "fingerprint": FINGERPRINT}, messages.METRIC_REQUIRED, id="empty metric"),
        pytest.param({"metric": PURCHASES}, messages.FINGERPRINT_REQUIRED, id="no fingerprint"),
        pytest.param({"metric": PURCHASES, "fingerprint": None}, messages.FINGERPRINT_REQUIRED, id="null fingerprint"),
        pytest.param({"metric": PURCHASES, "fingerprint": ""}, messages.FINGERPRINT_REQUIRED, id="empty fingerprint"),
        pytest.param(
            {"metric": "purchases", "fingerprint": FINGERPRINT}, messages.METRIC_NOT_OBJECT, id="metric a string"
        ),
        pytest.param(
            {"metric": [PURCHASES], "fingerprint": FINGERPRINT}, messages.METRIC_NOT_OBJECT, id="metric a list"
        ),
        pytest.param(
            {"metric": PURCHASES, "fingerprint": "f" * 65}, messages.FINGERPRINT_INVALID, id="fingerprint too long"
        ),
        pytest.param(
            {"metric": PURCHASES, "fingerprint": 12345}, messages.FINGERPRINT_INVALID, id="fingerprint a number"
        ),
        pytest.param(
            {"metric": PURCHASES, "fingerprint": ["f"]}, messages.FINGERPRINT_INVALID, id="fingerprint a list"
        ),
        pytest.param(
            {"metric": {**PURCHASES, "uuid": 7}, "fingerprint": FINGERPRINT}, messages.METRIC_UUID_INVALID, id="uuid 7"
        ),
        pytest.param(
            {"metric": {**PURCHASES, "uuid": "u" * 256}, "fingerprint": FINGERPRINT},
            messages.METRIC_UUID_INVALID,
            id="uuid too long",
        ),
        pytest.param({"metric": PURCHASES, "fingerprint": "f\x00"}, messages.NULL_CHARACTERS, id="NUL in fingerprint"),
        pytest.param(
            {"metric": {**PURCHASES, "name": "a\x00"}, "fingerprint": FINGERPRINT},
            messages.NULL_CHARACTERS,
            id="NUL in value",
        ),
        pytest.param(
            {"metric": {**PURCHASES, "x\x00": 1}, "fingerprint": FINGERPRINT}, messages.NULL_CHARACTERS, id="NUL in key"
        ),
        pytest.param(
            {"metric": {**PURCHASES, "series": [{"event": "\x00"}]}, "fingerprint": FINGERPRINT},
            messages.NULL_CHARACTERS,
            id="NUL nested",
        ),
    ],
)
def test_bad_recalculation_requests_are_refused_and_delete_nothing(client, experiment, body, detail):
    metric_result(experiment, DAYS[0], status=MetricResultStatus.COMPLETED, result={})

    response = client.post(url(experiment, "recalculate_timeseries/"), body)

    assert (response.status_code, response.json()) == (400, validation_error(detail))
    assert not ExperimentTimeseriesRecalculation.objects.exists()
    assert len(stored_rows(experiment)) == 1


def test_a_recalculation_body_that_is_not_an_object_is_refused(client, experiment):
    response = client.post(url(experiment, "recalculate_timeseries/"), [PURCHASES, FINGERPRINT])

    assert (response.status_code, response.json()) == (
        400,
        validation_error("Invalid data. Expected a dictionary, but got list."),
    )


def test_a_draft_cannot_be_recalculated(make_client):
    draft = make_experiment(timezone=UTC, start=None, metrics=[PURCHASES])
    client = make_client(member_of(draft.project))

    response = recalculate(client, draft)

    assert messages.TIMESERIES_NOT_STARTED == "Cannot recalculate timeseries for experiment that hasn't started"
    assert (response.status_code, response.json()) == (400, validation_error(messages.TIMESERIES_NOT_STARTED))
    assert not ExperimentTimeseriesRecalculation.objects.exists()


def test_a_recalculation_run_on_commit_fills_every_day_with_the_stored_events(
    client, experiment, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        created = recalculate(client, experiment)
    assert (created.status_code, created.json()["status"], len(callbacks)) == (201, "pending", 1)

    response = timeseries(client, experiment)

    body = response.json()
    assert (response.status_code, body["status"], body["errors"]) == (200, "completed", None)
    assert (body["recalculation_status"], body["recalculation_created_at"]) == (None, None)
    assert list(body["timeseries"]) == DAYS
    days = list(body["timeseries"].values())
    assert [day["baseline"]["key"] for day in days] == ["control"] * 3
    assert [[variant["key"] for variant in day["variant_results"]] for day in days] == [["test"]] * 3
    assert [day["baseline"]["number_of_samples"] for day in days] == SAMPLES_BY_DAY["control"]
    assert [day["variant_results"][0]["number_of_samples"] for day in days] == SAMPLES_BY_DAY["test"]
    assert [day["baseline"]["sum"] for day in days] == [
        n * PURCHASES_PER_UNIT["control"] for n in SAMPLES_BY_DAY["control"]
    ]
    assert [day["variant_results"][0]["sum"] for day in days] == [
        n * PURCHASES_PER_UNIT["test"] for n in SAMPLES_BY_DAY["test"]
    ]
    rows = ExperimentMetricResult.objects.filter(experiment=experiment).order_by("query_to")
    assert body["computed_at"] == max(row.completed_at for row in rows).isoformat()
    assert ExperimentTimeseriesRecalculation.objects.get().status == RecalculationStatus.COMPLETED


# --- timeseries_results ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        pytest.param({}, messages.METRIC_UUID_PARAM_REQUIRED, id="nothing"),
        pytest.param({"fingerprint": FINGERPRINT}, messages.METRIC_UUID_PARAM_REQUIRED, id="no metric_uuid"),
        pytest.param(
            {"metric_uuid": "", "fingerprint": FINGERPRINT}, messages.METRIC_UUID_PARAM_REQUIRED, id="empty uuid"
        ),
        pytest.param({"metric_uuid": "purchases"}, messages.FINGERPRINT_PARAM_REQUIRED, id="no fingerprint"),
        pytest.param({"metric_uuid": "purchases", "fingerprint": ""}, messages.FINGERPRINT_PARAM_REQUIRED, id="empty"),
    ],
)
def test_timeseries_results_need_metric_uuid_and_fingerprint(client, experiment, params, detail):
    response = client.get(url(experiment, "timeseries_results/"), params)

    assert (response.status_code, response.json()) == (400, validation_error(detail))


def test_timeseries_results_of_a_draft_are_refused(make_client):
    draft = make_experiment(timezone=UTC, start=None, metrics=[PURCHASES])

    response = timeseries(make_client(member_of(draft.project)), draft)

    assert (response.status_code, response.json()) == (400, validation_error(messages.EXPERIMENT_NOT_STARTED))


def test_timeseries_results_before_anything_ran_are_pending_with_every_day_null(client, experiment):
    metric_result(experiment, DAYS[0], fingerprint="e" * 64, status=MetricResultStatus.COMPLETED, result={})

    response = timeseries(client, experiment)

    assert (response.status_code, response.json()) == (
        200,
        {
            "experiment_id": experiment.pk,
            "metric_uuid": "purchases",
            "status": "pending",
            "timeseries": dict.fromkeys(DAYS),
            "errors": None,
            "computed_at": None,
            "created_at": experiment.created_at.isoformat(),
            "updated_at": experiment.updated_at.isoformat(),
            "recalculation_status": None,
            "recalculation_created_at": None,
        },
    )


def stored_result(samples: int) -> dict:
    """A day's result in the shape the statistics engine stores."""
    return {
        "baseline": {
            "key": "control",
            "number_of_samples": samples,
            "sum": 1,
            "sum_squares": 1,
            "validation_failures": [],
        },
        "variant_results": [
            {"key": "test", "number_of_samples": samples, "sum": 2, "sum_squares": 4, "validation_failures": []}
        ],
        "sample_ratio_mismatch": None,
    }


def test_timeseries_results_report_partial_then_failed_days(client, experiment):
    completed_at = timezone.now()
    result = stored_result(4)
    first = metric_result(
        experiment, DAYS[0], status=MetricResultStatus.COMPLETED, result=result, completed_at=completed_at
    )
    last = metric_result(
        experiment,
        DAYS[1],
        status=MetricResultStatus.FAILED,
        error_message="Not enough data",
        completed_at=completed_at + dt.timedelta(minutes=1),
    )

    partial = timeseries(client, experiment).json()

    assert partial == {
        "experiment_id": experiment.pk,
        "metric_uuid": "purchases",
        "status": "partial",
        "timeseries": {DAYS[0]: result, DAYS[1]: None, DAYS[2]: None},
        "errors": {DAYS[1]: "Not enough data"},
        "computed_at": last.completed_at.isoformat(),
        "created_at": first.created_at.isoformat(),
        "updated_at": last.updated_at.isoformat(),
        "recalculation_status": None,
        "recalculation_created_at": None,
    }

    first.delete()
    failed = timeseries(client, experiment).json()
    assert (failed["status"], failed["timeseries"], failed["errors"]) == (
        "failed",
        dict.fromkeys(DAYS),
        {DAYS[1]: "Not enough data"},
    )


def test_timeseries_results_are_completed_once_every_day_is(client, experiment):
    for number, day in enumerate(DAYS):
        metric_result(experiment, day, status=MetricResultStatus.COMPLETED, result=stored_result(number))

    body = timeseries(client, experiment).json()

    assert (body["status"], body["timeseries"]) == ("completed", {day: stored_result(n) for n, day in enumerate(DAYS)})


def test_timeseries_results_show_a_recalculation_while_it_is_pending_or_in_progress(client, experiment):
    requested = recalculate(client, experiment).json()
    recalculate(client, experiment, fingerprint="e" * 64)

    pending = timeseries(client, experiment).json()
    assert (pending["status"], pending["recalculation_status"], pending["recalculation_created_at"]) == (
        "pending",
        "pending",
        requested["created_at"],
    )
    ExperimentTimeseriesRecalculation.objects.filter(pk=requested["id"]).update(status=RecalculationStatus.IN_PROGRESS)
    assert timeseries(client, experiment).json()["recalculation_status"] == "in_progress"
    ExperimentTimeseriesRecalculation.objects.filter(pk=requested["id"]).update(status=RecalculationStatus.FAILED)
    done = timeseries(client, experiment).json()
    assert (done["recalculation_status"], done["recalculation_created_at"]) == (None, None)


# --- metrics_recalculation -------------------------------------------------------------------------------------


def batch_body(experiment, recalculation, **expected) -> dict:
    return {
        "id": str(recalculation.pk),
        "experiment_id": experiment.pk,
        "status": "pending",
        "total_metrics": len(experiment.metrics),
        "completed_metrics": 0,
        "failed_metrics": 0,
        "metric_errors": {},
        "trigger": "manual",
        "created_at": recalculation.created_at.isoformat(),
        **expected,
    }


def latest_batch(client, experiment):
    return client.get(url(experiment, "metrics_recalculation/latest/"))


def test_a_batch_recalculation_answers_201_then_200_while_it_is_active(client, experiment):
    experiment.metrics = [PURCHASES, PAGEVIEWS]
    experiment.save()

    created = client.post(url(experiment, "metrics_recalculation/"))

    recalculation = ExperimentMetricsRecalculation.objects.get()
    assert (created.status_code, created.json()) == (201, batch_body(experiment, recalculation))
    assert created.json()["created_at"].endswith("+00:00")
    again = client.post(url(experiment, "metrics_recalculation/"))
    assert (again.status_code, again.json()) == (200, created.json())
    ExperimentMetricsRecalculation.objects.update(status=RecalculationStatus.IN_PROGRESS)
    in_progress = client.post(url(experiment, "metrics_recalculation/"))
    assert (in_progress.status_code, in_progress.json()["id"]) == (200, str(recalculation.pk))

    ExperimentMetricsRecalculation.objects.update(status=RecalculationStatus.COMPLETED)
    after_completion = client.post(url(experiment, "metrics_recalculation/"))
    assert after_completion.status_code == 201 and after_completion.json()["id"] != str(recalculation.pk)


def test_a_draft_has_no_batch_recalculation(make_client):
    draft = make_experiment(timezone=UTC, start=None, metrics=[PURCHASES])

    response = make_client(member_of(draft.project)).post(url(draft, "metrics_recalculation/"))

    assert (response.status_code, response.json()) == (
        400,
        validation_error(messages.METRICS_RECALCULATION_NOT_STARTED),
    )
    assert not ExperimentMetricsRecalculation.objects.exists()


def test_latest_and_by_id_return_this_experiments_batches(client, experiment):
    assert (latest_batch(client, experiment).status_code, latest_batch(client, experiment).json()) == (404, NOT_FOUND)
    older = ExperimentMetricsRecalculation.objects.create(
        project=experiment.project, experiment=experiment, status=RecalculationStatus.FAILED, total_metrics=1
    )
    newer = client.post(url(experiment, "metrics_recalculation/")).json()

    latest = latest_batch(client, experiment)
    by_id = client.get(url(experiment, f"metrics_recalculation/{older.pk}/"))

    assert (latest.status_code, latest.json()) == (200, newer)
    assert (by_id.status_code, by_id.json()) == (
        200,
        batch_body(experiment, older, status="failed", total_metrics=1),
    )


@pytest.mark.parametrize(
    "recalculation_id",
    [
        pytest.param("00000000-0000-0000-0000-000000000000", id="unknown"),
        pytest.param("a" * 36, id="36 hex digits"),
        pytest.param("-" * 36, id="36 dashes"),
        pytest.param("not-a-uuid", id="not a uuid"),
    ],
)
def test_an_unknown_batch_is_not_found(client, experiment, recalculation_id):
    response = client.get(url(experiment, f"metrics_recalculation/{recalculation_id}/"))

    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_another_experiments_batch_is_not_found(client, experiment):
    other = ExperimentFactory(project=experiment.project, start_date=START, metrics=[PURCHASES])
    foreign = client.post(url(other, "metrics_recalculation/")).json()

    response = client.get(url(experiment, f"metrics_recalculation/{foreign['id']}/"))

    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert latest_batch(client, experiment).status_code == 404


def test_a_batch_run_on_commit_stores_every_metrics_result(client, experiment, django_capture_on_commit_callbacks):
    experiment.metrics = [PURCHASES]
    experiment.metrics_secondary = [PAGEVIEWS]
    experiment.save()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        created = client.post(url(experiment, "metrics_recalculation/"))
    assert (created.status_code, created.json()["status"], len(callbacks)) == (201, "pending", 1)

    latest = latest_batch(client, experiment).json()
    assert (latest["status"], latest["completed_metrics"], latest["total_metrics"], latest["failed_metrics"]) == (
        "completed",
        2,
        2,
        0,
    )
    assert latest["metric_errors"] == {}
    rows = {row.metric_uuid: row for row in ExperimentMetricResult.objects.filter(experiment=experiment)}
    assert set(rows) == {"purchases", "pageviews"}
    for metric in (PURCHASES, PAGEVIEWS):
        row = rows[metric["uuid"]]
        assert (row.status, row.fingerprint, row.query_from, row.query_to, row.error_message) == (
            MetricResultStatus.COMPLETED,
            experiment_metric_fingerprint(experiment, metric),
            START,
            END,
            None,
        )
    purchases = rows["purchases"].result
    assert (purchases["baseline"]["number_of_samples"], purchases["baseline"]["sum"]) == (9, 9)
    assert (purchases["variant_results"][0]["number_of_samples"], purchases["variant_results"][0]["sum"]) == (9, 18)
    # The stored current result is the last day of that metric's timeseries.
    fingerprint = experiment_metric_fingerprint(experiment, PURCHASES)
    series = timeseries(client, experiment, fingerprint=fingerprint).json()
    assert (series["status"], series["timeseries"][DAYS[-1]]) == ("partial", purchases)


def test_a_metric_the_engine_cannot_compute_fails_alone(client, experiment, django_capture_on_commit_callbacks):
    experiment.metrics = [PURCHASES, UNSUPPORTED]
    experiment.save()
    message = messages.UNSUPPORTED_METRIC.format(option="math 'unique_users'")

    with django_capture_on_commit_callbacks(execute=True):
        client.post(url(experiment, "metrics_recalculation/"))

    latest = latest_batch(client, experiment).json()
    assert {key: latest[key] for key in ("status", "completed_metrics", "failed_metrics", "metric_errors")} == {
        "status": "failed",
        "completed_metrics": 1,
        "failed_metrics": 1,
        "metric_errors": {"unsupported": message},
    }
    rows = {row.metric_uuid: row for row in ExperimentMetricResult.objects.filter(experiment=experiment)}
    assert (rows["purchases"].status, rows["purchases"].error_message) == (MetricResultStatus.COMPLETED, None)
    assert (rows["unsupported"].status, rows["unsupported"].error_message, rows["unsupported"].result) == (
        MetricResultStatus.FAILED,
        message,
        None,
    )


def test_a_metric_whose_query_errors_is_counted_failed_so_the_batch_finishes(
    client, experiment, django_capture_on_commit_callbacks
):
    """Counted before the error propagates for a retry: once retries run out the batch is not stuck in progress."""
    amounts = {**mean(events_node("purchase", math="sum", math_property="amount")), "uuid": "amounts"}
    experiment.metrics = [PURCHASES, amounts]
    experiment.save()
    # A numeric string beyond double precision makes PostgreSQL's cast fail: the query itself errors.
    overflow = RawEvent("purchase", "control-0-0", START + dt.timedelta(hours=3), {"amount": "1e999"})
    store(experiment.project, [overflow])

    with pytest.raises(Retry) as raised, django_capture_on_commit_callbacks(execute=True):
        batch = client.post(url(experiment, "metrics_recalculation/")).json()

    message = str(raised.value.exc)
    assert "out of range" in message
    latest = latest_batch(client, experiment).json()
    assert {key: latest[key] for key in ("status", "completed_metrics", "failed_metrics", "metric_errors")} == {
        "status": "failed",
        "completed_metrics": 1,
        "failed_metrics": 1,
        "metric_errors": {"amounts": message},
    }
    failed_row = ExperimentMetricResult.objects.get(metric_uuid="amounts")
    assert (failed_row.status, failed_row.error_message) == (MetricResultStatus.FAILED, message)

    # A retry that succeeds counts the metric as completed.
    Event.objects.filter(uuid=overflow.uuid).delete()
    recalculate_experiment_metric.delay(batch["id"], "amounts")
    retried = latest_batch(client, experiment).json()
    assert {key: retried[key] for key in ("status", "completed_metrics", "failed_metrics", "metric_errors")} == {
        "status": "completed",
        "completed_metrics": 2,
        "failed_metrics": 0,
        "metric_errors": {},
    }
    assert ExperimentMetricResult.objects.get(metric_uuid="amounts").status == MetricResultStatus.COMPLETED
    assert client.post(url(experiment, "metrics_recalculation/")).status_code == 201


TIMESERIES_ON = {"timeseries": True}


def test_launching_an_opted_in_experiment_starts_a_batch(make_client, django_capture_on_commit_callbacks):
    draft = make_experiment(timezone=UTC, start=None, metrics=[PURCHASES], scheduling_config=TIMESERIES_ON)
    client = make_client(member_of(draft.project))

    with django_capture_on_commit_callbacks(execute=True):
        launched = client.post(url(draft, "launch/"))

    assert launched.status_code == 200
    latest = latest_batch(client, draft).json()
    assert (latest["trigger"], latest["total_metrics"], latest["status"], latest["completed_metrics"]) == (
        RecalculationTrigger.EXPERIMENT_LAUNCH,
        1,
        "completed",
        1,
    )


def test_ending_an_opted_in_experiment_starts_a_batch(make_client):
    running = make_experiment(
        timezone=UTC, start=timezone.now() - dt.timedelta(days=2), metrics=[PURCHASES], scheduling_config=TIMESERIES_ON
    )
    client = make_client(member_of(running.project))

    assert client.post(url(running, "end/")).status_code == 200

    latest = latest_batch(client, running).json()
    assert (latest["trigger"], latest["status"]) == (RecalculationTrigger.EXPERIMENT_STOP, "pending")


@pytest.mark.parametrize(
    ("start", "end", "patch", "trigger"),
    [
        pytest.param(START, None, {"metrics": [PURCHASES, PAGEVIEWS]}, "experiment_update", id="metrics"),
        pytest.param(START, None, {"metrics_secondary": [PAGEVIEWS]}, "experiment_update", id="secondary"),
        pytest.param(None, None, {"start_date": "2025-02-01T10:00:00Z"}, "experiment_launch", id="start_date"),
        pytest.param(START, None, {"end_date": "2025-02-03T22:00:00Z"}, "experiment_stop", id="end_date"),
    ],
)
def test_patching_an_opted_in_experiment_starts_a_batch(make_client, start, end, patch, trigger):
    experiment = make_experiment(
        timezone=UTC,
        start=start,
        end=end,
        metrics=[PURCHASES],
        primary_metrics_ordered_uuids=["purchases"],
        scheduling_config=TIMESERIES_ON,
    )
    client = make_client(member_of(experiment.project))

    patched = client.patch(url(experiment), patch)

    assert patched.status_code == 200, patched.json()
    assert latest_batch(client, experiment).json()["trigger"] == trigger


def test_patching_other_fields_of_an_opted_in_experiment_starts_nothing(make_client):
    running = make_experiment(
        timezone=UTC,
        start=START,
        metrics=[PURCHASES],
        primary_metrics_ordered_uuids=["purchases"],
        scheduling_config=TIMESERIES_ON,
    )
    client = make_client(member_of(running.project))

    assert client.patch(url(running), {"name": "Renamed"}).status_code == 200

    assert not ExperimentMetricsRecalculation.objects.exists()


@pytest.mark.parametrize("scheduling_config", [None, {}, {"timeseries": False}])
def test_experiments_not_opted_in_start_no_batch(make_client, scheduling_config):
    draft = make_experiment(
        timezone=UTC,
        start=None,
        metrics=[PURCHASES],
        primary_metrics_ordered_uuids=["purchases"],
        scheduling_config=scheduling_config,
    )
    client = make_client(member_of(draft.project))

    assert client.post(url(draft, "launch/")).status_code == 200
    assert client.patch(url(draft), {"metrics": [PURCHASES, PAGEVIEWS]}).status_code == 200
    assert client.post(url(draft, "end/")).status_code == 200

    assert not ExperimentMetricsRecalculation.objects.exists()
    assert (latest_batch(client, draft).status_code, latest_batch(client, draft).json()) == (404, NOT_FOUND)


# --- scopes and organizations ----------------------------------------------------------------------------------


def results_requests(experiment, batch_id) -> dict:
    return {
        "timeseries_results": ("get", url(experiment, "timeseries_results/"), {"metric_uuid": "purchases"}),
        "latest": ("get", url(experiment, "metrics_recalculation/latest/"), None),
        "by id": ("get", url(experiment, f"metrics_recalculation/{batch_id}/"), None),
        "recalculate_timeseries": (
            "post",
            url(experiment, "recalculate_timeseries/"),
            {"metric": PURCHASES, "fingerprint": FINGERPRINT},
        ),
        "metrics_recalculation": ("post", url(experiment, "metrics_recalculation/"), None),
    }


def send(client, method: str, path: str, data):
    if method == "get":
        return client.get(path, {**(data or {}), "fingerprint": FINGERPRINT})
    return client.post(path, data)


def test_a_read_key_reads_results_but_cannot_start_recalculations(experiment, make_client):
    batch = ExperimentMetricsRecalculation.objects.create(
        project=experiment.project, experiment=experiment, status=RecalculationStatus.COMPLETED, total_metrics=1
    )
    client = make_client(member_of(experiment.project), scopes=["experiment:read"])
    requests = results_requests(experiment, batch.pk)

    statuses = {name: send(client, *request).status_code for name, request in requests.items()}
    refused = [send(client, *requests[name]).json() for name in ("recalculate_timeseries", "metrics_recalculation")]

    assert statuses == {
        "timeseries_results": 200,
        "latest": 200,
        "by id": 200,
        "recalculate_timeseries": 403,
        "metrics_recalculation": 403,
    }
    missing_write = missing_scope("experiment:write")
    assert refused == [missing_write, missing_write]
    assert not ExperimentTimeseriesRecalculation.objects.exists()
    assert ExperimentMetricsRecalculation.objects.get() == batch


def test_a_user_of_another_organization_is_refused_everything(experiment, make_client):
    batch = ExperimentMetricsRecalculation.objects.create(
        project=experiment.project, experiment=experiment, status=RecalculationStatus.COMPLETED, total_metrics=1
    )
    outsider = make_client(member_of(ProjectFactory()))

    responses = {
        name: (response.status_code, response.json())
        for name, request in results_requests(experiment, batch.pk).items()
        for response in [send(outsider, *request)]
    }

    assert responses == dict.fromkeys(responses, (403, NOT_A_MEMBER))
    assert len(responses) == 5
    assert not ExperimentTimeseriesRecalculation.objects.exists()
    assert ExperimentMetricsRecalculation.objects.get() == batch
