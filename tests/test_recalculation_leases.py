"""Leases on timeseries recalculations (experiments/results/leases.py): a run holds one and renews it with every
saved day; a copy that finds it live writes nothing and says how long to wait; an expired one is taken over and the
work resumed; a run whose lease was taken over stops. Real workers: tests/test_celery_worker.py."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from experiments.metrics.days import day_end
from experiments.models import ExperimentTimeseriesRecalculation, RecalculationStatus
from experiments.results.backfill import metric_result_upsert, timeseries_recalculation_run
from experiments.results.daily import stuck_recalculation_ids
from experiments.results.leases import LeaseLost, lease_claim
from experiments.tasks import run_timeseries_recalculation
from tests.test_timeseries import DAYS, FINGERPRINT, local_days, populated_experiment, request, stored

pytestmark = pytest.mark.django_db

OTHER_OWNER = uuid.uuid4()


def lease_state(recalculation):
    return ExperimentTimeseriesRecalculation.objects.values_list("status", "last_successful_date", "lease_owner").get(
        pk=recalculation.pk
    )


def leased_to_another_task(recalculation, *, expires_in: dt.timedelta, last_saved=None) -> None:
    ExperimentTimeseriesRecalculation.objects.filter(pk=recalculation.pk).update(
        status=RecalculationStatus.IN_PROGRESS,
        lease_owner=OTHER_OWNER,
        leased_until=timezone.now() + expires_in,
        last_successful_date=last_saved,
    )


def test_a_completed_run_releases_its_lease():
    experiment = populated_experiment()
    recalculation, _ = request(experiment)

    assert timeseries_recalculation_run(recalculation_id=recalculation.pk) is None

    assert lease_state(recalculation) == (RecalculationStatus.COMPLETED, local_days(experiment)[-1], None)
    assert ExperimentTimeseriesRecalculation.objects.get(pk=recalculation.pk).leased_until is None


def test_a_run_that_finds_a_live_lease_writes_nothing_and_waits_for_it_to_expire():
    experiment = populated_experiment()
    recalculation, _ = request(experiment)
    leased_to_another_task(recalculation, expires_in=dt.timedelta(seconds=40))

    wait_seconds = timeseries_recalculation_run(recalculation_id=recalculation.pk)

    assert 39 < wait_seconds <= 41
    assert lease_state(recalculation) == (RecalculationStatus.IN_PROGRESS, None, OTHER_OWNER)
    assert stored(experiment) == []


def test_an_expired_lease_is_taken_over_and_the_work_resumed_after_the_last_saved_day():
    experiment = populated_experiment()
    recalculation, _ = request(experiment)
    days, tz = local_days(experiment), experiment.project.tzinfo
    for day in days[:2]:
        metric_result_upsert(
            experiment=experiment,
            metric_uuid="metric-1",
            fingerprint=FINGERPRINT,
            query_to=day_end(day, tz),
            result={"saved_by": "the dead run"},
        )
    leased_to_another_task(recalculation, expires_in=-dt.timedelta(seconds=1), last_saved=days[1])

    assert timeseries_recalculation_run(recalculation_id=recalculation.pk) is None

    assert lease_state(recalculation) == (RecalculationStatus.COMPLETED, days[-1], None)
    results = [row.result for row in stored(experiment)]
    assert results[:2] == [{"saved_by": "the dead run"}] * 2
    assert all("baseline" in result for result in results[2:]) and len(results) == DAYS


def test_a_run_whose_lease_was_taken_over_can_neither_renew_nor_finish():
    experiment = populated_experiment()
    recalculation, _ = request(experiment)
    stale = lease_claim(recalculation.pk)
    ExperimentTimeseriesRecalculation.objects.filter(pk=recalculation.pk).update(
        leased_until=timezone.now() - dt.timedelta(seconds=1)
    )
    current = lease_claim(recalculation.pk)

    with pytest.raises(LeaseLost):
        stale.renew(last_successful_date=local_days(experiment)[0])
    assert stale.release(status=RecalculationStatus.COMPLETED) is False

    assert lease_state(recalculation) == (RecalculationStatus.IN_PROGRESS, None, current.owner)
    assert lease_claim(recalculation.pk) is None


def test_a_lease_lasts_the_configured_number_of_seconds(settings):
    settings.RECALCULATION_LEASE_SECONDS = 7
    experiment = populated_experiment()
    recalculation, _ = request(experiment)

    before = timezone.now()
    lease = lease_claim(recalculation.pk)

    leased_until = ExperimentTimeseriesRecalculation.objects.get(pk=recalculation.pk).leased_until
    assert lease is not None
    assert before + dt.timedelta(seconds=7) <= leased_until <= timezone.now() + dt.timedelta(seconds=7)


def test_the_sweep_requeues_expired_leases_only():
    experiment = populated_experiment()
    expired, _ = request(experiment, fingerprint="a" * 64)
    live, _ = request(experiment, fingerprint="b" * 64)
    leased_to_another_task(expired, expires_in=-dt.timedelta(seconds=1))
    leased_to_another_task(live, expires_in=dt.timedelta(seconds=30))

    assert stuck_recalculation_ids() == [expired.pk]


def test_in_process_a_task_that_finds_a_live_lease_returns_without_waiting():
    """The embedded mode cannot wait for a lease: the run holding it, in this process, finishes the work."""
    experiment = populated_experiment()
    recalculation, _ = request(experiment)
    leased_to_another_task(recalculation, expires_in=dt.timedelta(seconds=30))

    run_timeseries_recalculation.delay(str(recalculation.pk))

    assert lease_state(recalculation) == (RecalculationStatus.IN_PROGRESS, None, OTHER_OWNER)
    assert stored(experiment) == []
