"""A batch recalculation whose tasks were lost is found by the periodic job and finished."""

import datetime as dt

import pytest
from django.utils import timezone

from experiments.models import ExperimentMetricResult, ExperimentMetricsRecalculation, RecalculationStatus
from experiments.tasks import requeue_stuck_metrics_recalculations
from tests.test_metric_aggregation import START, events_node, make_experiment, mean

pytestmark = pytest.mark.django_db

FIRST = {**mean(events_node("purchase")), "uuid": "first"}
SECOND = {**mean(events_node("$pageview")), "uuid": "second"}


def batch(experiment, *, processed, age):
    recalculation = ExperimentMetricsRecalculation.objects.create(
        project=experiment.project,
        experiment=experiment,
        status=RecalculationStatus.IN_PROGRESS,
        total_metrics=2,
        completed_metrics=len(processed),
        metric_uuids=["first", "second"],
        processed_metric_uuids=processed,
    )
    ExperimentMetricsRecalculation.objects.filter(pk=recalculation.pk).update(updated_at=timezone.now() - age)
    return recalculation


def test_a_stalled_batch_is_finished_by_the_periodic_job():
    experiment = make_experiment(end=START + dt.timedelta(days=1), metrics=[FIRST, SECOND])
    stalled = batch(experiment, processed=["first"], age=dt.timedelta(hours=2))

    requeue_stuck_metrics_recalculations.delay()

    stalled.refresh_from_db()
    assert stalled.status == RecalculationStatus.COMPLETED
    assert (stalled.completed_metrics, stalled.failed_metrics) == (2, 0)
    assert list(ExperimentMetricResult.objects.values_list("metric_uuid", flat=True)) == ["second"]


def test_a_batch_still_making_progress_is_left_alone():
    experiment = make_experiment(end=START + dt.timedelta(days=1), metrics=[FIRST, SECOND])
    recent = batch(experiment, processed=["first"], age=dt.timedelta(minutes=1))

    requeue_stuck_metrics_recalculations.delay()

    recent.refresh_from_db()
    assert recent.status == RecalculationStatus.IN_PROGRESS
    assert ExperimentMetricResult.objects.count() == 0


def test_a_metric_removed_since_the_batch_started_counts_as_failed():
    experiment = make_experiment(end=START + dt.timedelta(days=1), metrics=[FIRST])
    stalled = batch(experiment, processed=["first"], age=dt.timedelta(hours=2))

    requeue_stuck_metrics_recalculations.delay()

    stalled.refresh_from_db()
    assert stalled.status == RecalculationStatus.FAILED
    assert stalled.metric_errors == {"second": "The metric was removed from the experiment."}
