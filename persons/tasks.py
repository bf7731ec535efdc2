"""Celery tasks of persons: the periodic squash of person overrides."""

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from persons.services.squash import person_overrides_squash

TIME_LIMITS = {"soft_time_limit": settings.CELERY_TASK_SOFT_TIME_LIMIT, "time_limit": settings.CELERY_TASK_TIME_LIMIT}


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3, retry_backoff=30, **TIME_LIMITS)
def squash_person_overrides() -> int:
    """Rewrite the events of merged persons and drop their overrides; safe to kill and to run twice."""
    return person_overrides_squash()
