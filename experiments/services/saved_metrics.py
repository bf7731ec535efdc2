"""Saved metric rules: a saved metric's query always has a `uuid`, which experiments put in their metric
ordering arrays when they link it."""

import uuid

from experiments.models import ExperimentSavedMetric
from experiments_api.models import Project, User
from experiments_api.updates import model_update


def _with_uuid(query: dict, fallback: str | None = None) -> dict:
    """Keep the query's uuid, else the previous one (on update), else a new one."""
    return {**query, "uuid": query.get("uuid") or fallback or str(uuid.uuid4())}


def saved_metric_create(*, project: Project, user: User | None, fields: dict) -> ExperimentSavedMetric:
    """Create the saved metric from validated `fields`; a query without `uuid` gets one."""
    fields = {**fields, "query": _with_uuid(fields["query"])}
    return ExperimentSavedMetric.objects.create(project=project, created_by=user, **fields)


def saved_metric_update(*, saved_metric: ExperimentSavedMetric, changes: dict) -> ExperimentSavedMetric:
    """Apply validated `changes`; a new query without `uuid` keeps the previous query's uuid."""
    changes = dict(changes)
    if "query" in changes:
        changes["query"] = _with_uuid(changes["query"], fallback=saved_metric.query.get("uuid"))
    return model_update(instance=saved_metric, changes=changes)
