"""Inline metric bookkeeping: uuids, fingerprints and the display-ordering arrays (§5.3, §6)."""

import uuid

from experiments import messages
from experiments.definitions.fingerprint import experiment_metric_fingerprint
from experiments.models import Experiment
from experiments_api.exceptions import DomainError

PRIMARY, SECONDARY = "primary", "secondary"
ORDERING_FIELDS = {PRIMARY: "primary_metrics_ordered_uuids", SECONDARY: "secondary_metrics_ordered_uuids"}
METRIC_FIELDS = {PRIMARY: "metrics", SECONDARY: "metrics_secondary"}


def assign_metric_uuids(metric_lists: list[list[dict]], taken: set[str]) -> None:
    """Give every metric without a uuid, or with one already used (across all lists and `taken`), a new uuid4."""
    seen = set(taken)
    for metrics in metric_lists:
        for metric in metrics:
            if not metric.get("uuid") or metric["uuid"] in seen:
                metric["uuid"] = str(uuid.uuid4())
            seen.add(metric["uuid"])


def refresh_fingerprints(experiment: Experiment) -> None:
    """Recompute the fingerprint of every inline metric under the experiment's current settings."""
    for field in METRIC_FIELDS.values():
        metrics = getattr(experiment, field) or []
        setattr(
            experiment,
            field,
            [{**metric, "fingerprint": experiment_metric_fingerprint(experiment, metric)} for metric in metrics],
        )


def metric_uuids(metrics: list[dict] | None) -> list[str]:
    return [metric["uuid"] for metric in metrics or [] if metric.get("uuid")]


def saved_metric_uuids_by_kind(links: list[tuple[dict, dict]]) -> dict[str, list[str]]:
    """Group (saved metric query, link metadata) pairs by their link's metadata type (default primary)."""
    grouped: dict[str, list[str]] = {PRIMARY: [], SECONDARY: []}
    for query, metadata in links:
        kind = SECONDARY if (metadata or {}).get("type") == SECONDARY else PRIMARY
        if (query or {}).get("uuid"):
            grouped[kind].append(query["uuid"])
    return grouped


def sync_ordering(ordering: list[str] | None, *, removed: set[str], added: list[str]) -> list[str] | None:
    """Drop removed uuids and append added ones that are missing; keep None when there is nothing to order."""
    if ordering is None and not added:
        return None
    synced = [item for item in ordering or [] if item not in removed]
    synced.extend(item for item in added if item not in synced)
    return synced


def validate_ordering(experiment: Experiment, saved_uuids: dict[str, list[str]]) -> None:
    for kind, field in ORDERING_FIELDS.items():
        expected = set(metric_uuids(getattr(experiment, METRIC_FIELDS[kind]))) | set(saved_uuids[kind])
        if not expected:
            continue
        ordering = getattr(experiment, field)
        if ordering is None:
            raise DomainError(messages.ORDERING_NULL.format(field=field, kind=kind))
        missing = sorted(expected - set(ordering))
        if missing:
            raise DomainError(messages.ORDERING_MISSING.format(field=field, missing=missing))


def validate_unique_metric_uuids(experiment: Experiment, saved_uuids: dict[str, list[str]]) -> None:
    seen: set[str] = set()
    all_uuids = metric_uuids(experiment.metrics) + metric_uuids(experiment.metrics_secondary)
    for metric_uuid in all_uuids + saved_uuids[PRIMARY] + saved_uuids[SECONDARY]:
        if metric_uuid in seen:
            raise DomainError(messages.DUPLICATE_METRIC_UUID.format(uuid=metric_uuid))
        seen.add(metric_uuid)
