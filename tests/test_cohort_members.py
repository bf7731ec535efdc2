"""Cohort members: static cohorts from person uuids and by adding/removing persons; dynamic cohorts calculated by
the Celery task (person properties, other cohorts, the behavioural performed_event leaf of the exposure cohort),
with PostHog's bookkeeping; the exposure cohort as a static copy; the periodic job's choice of stale cohorts."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from events.services import events_ingest
from flags.models import Cohort
from persons.models import CohortPerson
from persons.selectors import person_for_distinct_id
from persons.services.cohorts import (
    ERROR_BACKOFF,
    LOST_AFTER,
    MAX_ERRORS,
    NO_VALID_USERS,
    NOT_A_MEMBER,
    NOT_STATIC,
    cohort_calculate,
    stale_cohort_ids,
    stale_cohorts_claim,
)
from persons.tasks import calculate_stale_cohorts
from tests.factories import CohortFactory
from tests.helpers import closed_port

pytestmark = pytest.mark.django_db


def ingest(project, *events):
    result = events_ingest(project=project, events=[{"uuid": str(uuid.uuid4()), "properties": {}, **e} for e in events])
    assert not result.rejected


def person(project, distinct_id):
    return person_for_distinct_id(project_id=project.pk, distinct_id=distinct_id)


def members(cohort) -> set[str]:
    return set(CohortPerson.objects.filter(cohort=cohort).values_list("person__distinct_ids__distinct_id", flat=True))


def cohorts_url(project, suffix=""):
    return f"/api/projects/{project.pk}/cohorts/{suffix}"


@pytest.fixture
def people(project):
    ingest(
        project,
        {"event": "$set", "distinct_id": "ada", "properties": {"$set": {"plan": "pro"}}},
        {"event": "$set", "distinct_id": "bob", "properties": {"$set": {"plan": "free"}}},
        {
            "event": "purchase",
            "distinct_id": "bob",
            "timestamp": "2025-01-10T00:00:00+00:00",
            "properties": {"amount": 5},
        },
        {"event": "purchase", "distinct_id": "cyd", "timestamp": "2024-01-10T00:00:00+00:00"},
    )


def test_a_static_cohort_from_person_uuids(api_client, project, people):
    ids = [str(person(project, "ada").uuid), str(uuid.uuid4())]  # unknown uuids are ignored

    response = api_client.post(
        cohorts_url(project), {"name": "s", "is_static": True, "_create_static_person_ids": ids}, format="json"
    )

    assert response.status_code == 201
    cohort = Cohort.objects.get(pk=response.json()["id"])
    assert members(cohort) == {"ada"}
    assert "_create_static_person_ids" not in response.json()
    assert api_client.get(cohorts_url(project, f"{cohort.pk}/persons/")).json()["results"][0]["distinct_ids"] == ["ada"]


def test_adding_and_removing_persons_of_a_static_cohort(api_client, project, people):
    cohort = CohortFactory(project=project, is_static=True)
    add = cohorts_url(project, f"{cohort.pk}/add_persons_to_static_cohort/")
    remove = cohorts_url(project, f"{cohort.pk}/remove_person_from_static_cohort/")
    bob = str(person(project, "bob").uuid)

    assert api_client.patch(add, {"person_ids": [bob]}, format="json").json() == {"success": True}
    assert members(cohort) == {"bob"}
    assert api_client.patch(add, {"person_ids": [str(uuid.uuid4())]}, format="json").json() == {
        "type": "validation_error",
        "code": "invalid_input",
        "detail": NO_VALID_USERS,
        "attr": "person_ids",
    }
    assert api_client.patch(add, {"person_ids": ["x"]}, format="json").status_code == 400
    assert api_client.patch(add, {"person_ids": [bob] * 1001}, format="json").status_code == 400
    assert api_client.patch(remove, {"person_id": bob}, format="json").json() == {"success": True}
    response = api_client.patch(remove, {"person_id": bob}, format="json")
    assert (response.status_code, response.json()["detail"]) == (404, NOT_A_MEMBER)
    dynamic = CohortFactory(project=project)
    response = api_client.patch(
        cohorts_url(project, f"{dynamic.pk}/add_persons_to_static_cohort/"), {"person_ids": [bob]}, format="json"
    )
    assert response.json()["detail"] == NOT_STATIC


def test_a_dynamic_cohort_is_calculated_on_save(api_client, project, people):
    filters = {
        "properties": {
            "type": "OR",
            "values": [
                {"type": "AND", "values": [{"key": "plan", "value": "pro", "type": "person"}]},
                {
                    "type": "AND",
                    "values": [
                        {
                            "key": "purchase",
                            "type": "behavioral",
                            "value": "performed_event",
                            "event_type": "events",
                            "explicit_datetime": "2025-01-01T00:00:00Z",
                            "event_filters": [{"key": "amount", "value": 5, "operator": "gte"}],
                        }
                    ],
                },
            ],
        }
    }

    with_commit = api_client.post(cohorts_url(project), {"name": "d", "filters": filters}, format="json")

    cohort = Cohort.objects.get(pk=with_commit.json()["id"])
    cohort_calculate(cohort_id=cohort.pk)  # what the queued task does once the request's transaction commits
    cohort.refresh_from_db()
    assert members(cohort) == {"ada", "bob"}  # cyd bought before the explicit date
    assert (cohort.count, cohort.is_calculating, cohort.errors_calculating) == (2, False, 0)
    assert cohort.last_calculation is not None


def test_cohort_references_and_negation(project, people):
    pro = CohortFactory(
        project=project,
        filters={"properties": {"type": "AND", "values": [{"key": "plan", "value": "pro", "type": "person"}]}},
    )
    cohort_calculate(cohort_id=pro.pk)
    others = CohortFactory(
        project=project,
        filters={
            "properties": {
                "type": "AND",
                "values": [
                    {"key": "id", "value": pro.pk, "type": "cohort", "negation": True},
                    {"key": "plan", "type": "person", "operator": "is_set"},
                ],
            }
        },
    )

    cohort_calculate(cohort_id=others.pk)

    assert members(others) == {"bob"}


def test_a_merge_moves_cohort_memberships(project, people):
    cohort = CohortFactory(project=project, is_static=True)
    CohortPerson.objects.create(cohort=cohort, person=person(project, "bob"))

    ingest(project, {"event": "$identify", "distinct_id": "ada", "properties": {"$anon_distinct_id": "bob"}})

    assert members(cohort) == {"ada", "bob"}
    assert CohortPerson.objects.get(cohort=cohort).person == person(project, "ada")


UNCOMPUTABLE = {
    "properties": {
        "type": "AND",
        "values": [{"key": "purchase", "type": "behavioral", "value": "performed_event", "event_type": "actions"}],
    }
}
PLAN_FREE = {"properties": {"type": "AND", "values": [{"key": "plan", "value": "free", "type": "person"}]}}
PURCHASED_THIS_WEEK = {
    "properties": {
        "type": "AND",
        "values": [
            {
                "key": "purchase",
                "type": "behavioral",
                "value": "performed_event",
                "time_value": 7,
                "time_interval": "day",
                "event_type": "events",
            }
        ],
    }
}


def test_a_failed_calculation_counts_an_error_and_a_success_clears_it(project, people):
    # Stored before leaves were validated on save: it no longer parses, so it cannot be calculated.
    cohort = CohortFactory(project=project, filters=UNCOMPUTABLE, is_calculating=True, errors_calculating=2)

    cohort_calculate(cohort_id=cohort.pk)

    cohort.refresh_from_db()
    assert (cohort.errors_calculating, cohort.is_calculating, cohort.count, cohort.last_calculation) == (
        3,
        False,
        None,
        None,
    )
    assert cohort.last_error_at is not None
    cohort.filters = PLAN_FREE
    cohort.save()
    cohort_calculate(cohort_id=cohort.pk)
    cohort.refresh_from_db()
    assert (cohort.errors_calculating, cohort.last_error_at, cohort.count, members(cohort)) == (0, None, 1, {"bob"})


def test_an_unreachable_event_store_counts_an_error(project, people, settings):
    settings.EVENT_STORE_URL = f"clickhouse://default:@127.0.0.1:{closed_port()}/events"
    cohort = CohortFactory(project=project, filters=PURCHASED_THIS_WEEK)

    cohort_calculate(cohort_id=cohort.pk)  # logged, not raised: the periodic job retries after the backoff

    cohort.refresh_from_db()
    assert (cohort.errors_calculating, cohort.is_calculating, cohort.count) == (1, False, None)
    assert cohort.last_error_at is not None


def test_a_failing_cohort_waits_30_minutes_times_two_to_the_errors(project):
    now = timezone.now()
    day_old = now - dt.timedelta(days=1)

    def failing(errors: int, failed_ago: dt.timedelta) -> int:
        return CohortFactory(
            project=project, last_calculation=day_old, errors_calculating=errors, last_error_at=now - failed_ago
        ).pk

    cases = {
        failing(1, ERROR_BACKOFF * 2 - dt.timedelta(seconds=1)): False,  # 1 error: 60 minutes
        failing(1, ERROR_BACKOFF * 2 + dt.timedelta(seconds=1)): True,
        failing(3, dt.timedelta(hours=3, minutes=59)): False,  # 3 errors: 4 hours
        failing(3, dt.timedelta(hours=4, minutes=1)): True,
        failing(MAX_ERRORS, ERROR_BACKOFF * 2**MAX_ERRORS + dt.timedelta(seconds=1)): True,
        failing(MAX_ERRORS + 1, dt.timedelta(days=10_000)): False,  # given up
        # Failed before last_error_at existed: no backoff to wait for.
        CohortFactory(project=project, last_calculation=day_old, errors_calculating=4).pk: True,
    }

    chosen = set(stale_cohort_ids(now=now))

    assert {pk: pk in chosen for pk in cases} == cases


def test_the_periodic_job_takes_stale_dynamic_cohorts(project, people):
    now = timezone.now()
    fresh = CohortFactory(project=project, last_calculation=now)
    stale = CohortFactory(project=project, last_calculation=now - dt.timedelta(hours=1), filters=PLAN_FREE)
    never = CohortFactory(project=project)
    CohortFactory(project=project, is_static=True)
    CohortFactory(project=project, deleted=True)
    CohortFactory(project=project, errors_calculating=21)
    CohortFactory(project=project, is_calculating=True, calculation_queued_at=now)  # already queued

    assert stale_cohort_ids(now=now) == [never.pk, stale.pk]  # never calculated first
    assert fresh.pk not in stale_cohort_ids(now=now)
    calculate_stale_cohorts.delay()
    assert members(stale) == {"bob"}
    stale.refresh_from_db()
    assert (stale.is_calculating, stale.count, stale.errors_calculating) == (False, 1, 0)


def test_the_periodic_job_marks_what_it_queues_and_resets_lost_calculations(project):
    now = timezone.now()
    stale = CohortFactory(project=project, last_calculation=now - dt.timedelta(hours=1))
    running = CohortFactory(project=project, is_calculating=True, calculation_queued_at=now - dt.timedelta(minutes=5))
    lost = CohortFactory(
        project=project, is_calculating=True, calculation_queued_at=now - LOST_AFTER - dt.timedelta(seconds=1)
    )
    legacy = CohortFactory(project=project, is_calculating=True, errors_calculating=2)  # queued before the field
    upload = CohortFactory(  # a static cohort whose CSV task was lost
        project=project, is_static=True, is_calculating=True, calculation_queued_at=now - LOST_AFTER * 2
    )

    assert stale_cohorts_claim(now=now) == [stale.pk]

    for cohort in (stale, running, lost, legacy, upload):
        cohort.refresh_from_db()
    assert (upload.is_calculating, upload.errors_calculating) == (False, 1)
    assert (stale.is_calculating, stale.calculation_queued_at) == (True, now)
    assert stale_cohorts_claim(now=now) == []  # queued once, not again while it runs
    assert (running.is_calculating, running.errors_calculating) == (True, 0)
    assert (lost.is_calculating, lost.errors_calculating, lost.last_error_at) == (False, 1, now)
    assert (legacy.is_calculating, legacy.errors_calculating, legacy.last_error_at) == (False, 3, now)
    # The reset counts as a failure: the next try waits for the backoff (60 minutes after one error, 4 h after 3).
    second = dt.timedelta(seconds=1)
    assert lost.pk not in stale_cohort_ids(now=now + ERROR_BACKOFF * 2 - second)
    assert lost.pk in stale_cohort_ids(now=now + ERROR_BACKOFF * 2 + second)
    assert legacy.pk not in stale_cohort_ids(now=now + ERROR_BACKOFF * 8 - second)
    assert legacy.pk in stale_cohort_ids(now=now + ERROR_BACKOFF * 8 + second)


def test_saving_a_dynamic_cohort_queues_its_calculation(
    api_client, project, people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(cohorts_url(project), {"name": "free", "filters": PLAN_FREE}, format="json")

    assert response.json()["is_calculating"] is True
    cohort = Cohort.objects.get(pk=response.json()["id"])
    assert (cohort.is_calculating, cohort.count, members(cohort)) == (False, 1, {"bob"})
    assert cohort.calculation_queued_at is not None


def test_a_static_exposure_cohort(api_client, project):
    from tests.test_experiments_exposure_cohort import cohort_url, launched

    experiment = launched(project)
    at = (experiment.start_date + dt.timedelta(hours=1)).isoformat()
    ingest(
        project,
        *(
            {
                "event": "$feature_flag_called",
                "distinct_id": f"u{n}",
                "timestamp": at,
                "properties": {"$feature_flag": experiment.feature_flag.key, "$feature_flag_response": "test"},
            }
            for n in range(3)
        ),
    )

    response = api_client.post(cohort_url(project, experiment.id), {"is_static": True}, format="json")

    assert response.status_code == 201, response.json()
    cohort = Cohort.objects.get(pk=response.json()["cohort"]["id"])
    assert (cohort.is_static, cohort.count, members(cohort)) == (True, 3, {"u0", "u1", "u2"})
    assert api_client.post(cohort_url(project, experiment.id), {"is_static": "maybe"}, format="json").status_code == 400
