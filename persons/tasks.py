"""Celery tasks of persons: the periodic squash of person overrides, and cohort calculations."""

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from persons.services.cohorts import cohort_calculate, stale_cohorts_claim, static_cohort_persons_add_from_csv
from persons.services.squash import person_overrides_squash

TIME_LIMITS = {"soft_time_limit": settings.CELERY_TASK_SOFT_TIME_LIMIT, "time_limit": settings.CELERY_TASK_TIME_LIMIT}


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3, retry_backoff=30, **TIME_LIMITS)
def squash_person_overrides() -> int:
    """Rewrite the events of merged persons and drop their overrides; safe to kill and to run twice."""
    return person_overrides_squash()


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3, retry_backoff=30, **TIME_LIMITS)
def calculate_cohort(cohort_id: int) -> None:
    cohort_calculate(cohort_id=cohort_id)


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3, retry_backoff=30, **TIME_LIMITS)
def calculate_stale_cohorts() -> None:
    """Fan out one calculation per dynamic cohort last calculated over 15 minutes ago (a failing one only once its
    backoff is over); calculations lost for an hour are reset first."""
    for cohort_id in stale_cohorts_claim():
        calculate_cohort.delay(cohort_id)


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3, retry_backoff=30, **TIME_LIMITS)
def add_static_cohort_persons(cohort_id: int, id_type: str, ids: list[str]) -> None:
    """Add the persons of a static cohort's CSV upload (idempotent: members already there are kept)."""
    static_cohort_persons_add_from_csv(cohort_id=cohort_id, id_type=id_type, ids=ids)
