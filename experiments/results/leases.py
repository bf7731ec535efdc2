"""Leases on timeseries recalculations: the task running one holds it for `RECALCULATION_LEASE_SECONDS` and renews
the lease with every day it saves, so a redelivered or retried copy can tell a live run (wait for the lease to
expire) from a dead one (take it over and resume after the last saved day)."""

import datetime as dt
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from experiments.models import ExperimentTimeseriesRecalculation, RecalculationStatus


def stall_period() -> dt.timedelta:
    """Work without a lease (a batch, or a record written before leases) is stalled after going this long without an
    update: the longest a task may run, plus a margin."""
    return dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) + dt.timedelta(minutes=5)


def stalled_before() -> dt.datetime:
    return timezone.now() - stall_period()


class LeaseLost(Exception):
    """Another task took the recalculation over after this one's lease expired: this one stops, writing nothing."""


def _lease_end() -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=settings.RECALCULATION_LEASE_SECONDS)


def expired_lease(now: dt.datetime) -> Q:
    """In progress, but the lease (or, without one, the last update) is too old: its task is dead."""
    return Q(status=RecalculationStatus.IN_PROGRESS) & (
        Q(leased_until__lt=now) | Q(leased_until__isnull=True, updated_at__lt=now - stall_period())
    )


@dataclass(frozen=True)
class Lease:
    recalculation_id: uuid.UUID
    owner: uuid.UUID

    def _held(self):
        return ExperimentTimeseriesRecalculation.objects.filter(pk=self.recalculation_id, lease_owner=self.owner)

    def renew(self, **fields) -> None:
        """Extend the lease, saving `fields` with it (in the caller's transaction); LeaseLost if it was taken over."""
        if not self._held().update(leased_until=_lease_end(), updated_at=timezone.now(), **fields):
            raise LeaseLost

    def release(self, **fields) -> bool:
        """End the lease, saving `fields` (the final status); False if it was taken over (the new owner finishes)."""
        return bool(self._held().update(lease_owner=None, leased_until=None, updated_at=timezone.now(), **fields))


def lease_claim(recalculation_id: uuid.UUID) -> Lease | None:
    """Move the recalculation to in_progress under a new lease: when pending, failed (a retry), or in progress under
    an expired lease. None when it is completed, leased to a live task, or failed and superseded by a newer request
    (the partial unique constraint refuses a second active record)."""
    now = timezone.now()
    claimable = Q(status__in=(RecalculationStatus.PENDING, RecalculationStatus.FAILED)) | expired_lease(now)
    owner = uuid.uuid4()
    try:
        with transaction.atomic():
            claimed = ExperimentTimeseriesRecalculation.objects.filter(claimable, pk=recalculation_id).update(
                status=RecalculationStatus.IN_PROGRESS,
                error_message=None,
                lease_owner=owner,
                leased_until=_lease_end(),
                updated_at=now,
            )
    except IntegrityError:
        return None
    return Lease(recalculation_id, owner) if claimed else None


def lease_wait_seconds(recalculation_id: uuid.UUID) -> float | None:
    """Seconds until the live lease on an in-progress recalculation can be taken over (at least one), or None when
    there is nothing to wait for (completed, or failed and superseded)."""
    held = (
        ExperimentTimeseriesRecalculation.objects.filter(pk=recalculation_id, status=RecalculationStatus.IN_PROGRESS)
        .values("leased_until", "updated_at")
        .first()
    )
    if held is None:
        return None
    expires = held["leased_until"] or held["updated_at"] + stall_period()
    return max(1.0, (expires - timezone.now()).total_seconds() + 1)
