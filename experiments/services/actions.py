"""Experiment actions beyond CRUD: duplicate (§4.7) and the exposure cohort (§4.8)."""

import copy

from django.db import transaction

from experiments import messages
from experiments.definitions.exposure import parse_exposure_criteria
from experiments.models import Experiment
from experiments.services.crud import experiment_create
from experiments.services.metric_lists import assign_metric_uuids
from experiments_api.exceptions import DomainError
from experiments_api.models import User
from flags.models import Cohort, FeatureFlag
from flags.services import cohort_create
from persons.services.cohorts import static_cohort_fill

COPY_SUFFIX = " (Copy)"
EXPOSURE_EVENT = "$feature_flag_called"
COHORT_EVENT_FILTER_TYPES = ("event", "feature", "element", "hogql")


def _copy_name(experiment: Experiment) -> str:
    """ "<name> (Copy)", then "<name> (Copy) 1", "… 2", … until no live experiment of the project has it."""
    base = f"{experiment.name}{COPY_SUFFIX}"
    taken = set(
        Experiment.objects.alive()
        .filter(project=experiment.project, name__startswith=base)
        .values_list("name", flat=True)
    )
    if base not in taken:
        return base
    suffix = 1
    while f"{base} {suffix}" in taken:
        suffix += 1
    return f"{base} {suffix}"


def _remap_metric_uuids(metrics: list[dict], ordering: list[str] | None) -> tuple[list[dict], list[str] | None]:
    """Give each copied metric a fresh uuid and carry the display order over to the new uuids."""
    copied = copy.deepcopy(metrics or [])
    old_uuids = [metric.get("uuid") for metric in copied]
    for metric in copied:
        metric.pop("uuid", None)
    assign_metric_uuids([copied], taken=set())
    mapping = {old: metric["uuid"] for old, metric in zip(old_uuids, copied, strict=True) if old}
    return copied, None if ordering is None else [mapping.get(item, item) for item in ordering]


def experiment_copy_data(experiment: Experiment, *, name: str, feature_flag_key: str) -> dict:
    """Create-path input for a copy of `experiment` as a new draft: its definition, without dates, archive state,
    conclusion, holdout or exposure cohort."""
    return {
        "name": name,
        "feature_flag": {"key": feature_flag_key},
        "description": experiment.description,
        "type": experiment.type,
        **{
            field: copy.deepcopy(getattr(experiment, field))
            for field in (
                "parameters",
                "filters",
                "metrics",
                "metrics_secondary",
                "stats_config",
                "exposure_criteria",
                "scheduling_config",
                "primary_metrics_ordered_uuids",
                "secondary_metrics_ordered_uuids",
            )
        },
        "only_count_matured_users": experiment.only_count_matured_users,
    }


def experiment_duplicate(
    *, experiment: Experiment, user: User, feature_flag_key: str | None = None, name: str | None = None
) -> Experiment:
    """Copy an experiment as a new draft through the create path. Without a new key the copy shares the flag."""
    parameters = copy.deepcopy(experiment.parameters)
    key = feature_flag_key or experiment.feature_flag.key
    if key != experiment.feature_flag.key:
        existing = FeatureFlag.objects.alive().filter(project=experiment.project, key=key).first()
        if existing is not None and existing.variants:
            parameters = {**(parameters or {}), "feature_flag_variants": copy.deepcopy(existing.variants)}
    metrics, primary_order = _remap_metric_uuids(experiment.metrics, experiment.primary_metrics_ordered_uuids)
    metrics_secondary, secondary_order = _remap_metric_uuids(
        experiment.metrics_secondary, experiment.secondary_metrics_ordered_uuids
    )
    data = {
        **experiment_copy_data(experiment, name=name or _copy_name(experiment), feature_flag_key=key),
        "parameters": parameters,
        "metrics": metrics,
        "metrics_secondary": metrics_secondary,
        "primary_metrics_ordered_uuids": primary_order,
        "secondary_metrics_ordered_uuids": secondary_order,
        "saved_metrics_ids": [
            {"id": link.saved_metric_id, "metadata": link.metadata} for link in experiment.saved_metric_links.all()
        ],
    }
    return experiment_create(project=experiment.project, user=user, data=data)


def _exposure_target(experiment: Experiment) -> tuple[str | int, str, list[dict]]:
    """(entity key, event_type, event_filters) of the exposure: exposure_config, else the legacy
    custom_exposure_filter, else `$feature_flag_called` for the experiment's flag."""
    flag_filter = [
        {"key": "$feature_flag", "value": [experiment.feature_flag.key], "operator": "exact", "type": "event"}
    ]
    criteria = parse_exposure_criteria(experiment.exposure_criteria)
    if criteria.action_id is not None:
        raise DomainError(messages.EXPOSURE_COHORT_INVALID_ACTION)  # this server has no actions
    if criteria.event is not None:
        return criteria.event, "events", [{**prop, "type": prop.get("type") or "event"} for prop in criteria.properties]
    custom = (experiment.parameters or {}).get("custom_exposure_filter") or {}
    entities = [*(custom.get("events") or []), *(custom.get("actions") or [])]
    if entities and entities[0].get("id") is not None:
        entity = entities[0]
        # A property without a type is an event property.
        properties = [
            {**prop, "type": prop.get("type") or "event"}
            for prop in entity.get("properties") or []
            if (prop.get("type") or "event") in COHORT_EVENT_FILTER_TYPES
        ]
        if entity.get("type") == "actions":
            raise DomainError(messages.EXPOSURE_COHORT_INVALID_ACTION)  # this server has no actions
        return entity["id"], "events", properties
    return EXPOSURE_EVENT, "events", flag_filter


@transaction.atomic
def exposure_cohort_create(*, experiment: Experiment, user: User, is_static: bool = False) -> Cohort:
    experiment = Experiment.objects.select_for_update(of=("self",)).select_related("feature_flag").get(pk=experiment.pk)
    if experiment.feature_flag.deleted:
        raise DomainError(messages.EXPOSURE_COHORT_NO_FLAG)
    if experiment.start_date is None:
        raise DomainError(messages.EXPOSURE_COHORT_NOT_STARTED)
    if experiment.exposure_cohort_id is not None:
        raise DomainError(messages.EXPOSURE_COHORT_EXISTS)
    key, event_type, event_filters = _exposure_target(experiment)
    behavioural_filter = {
        "key": key,
        "type": "behavioral",
        "value": "performed_event",
        "negation": False,
        "event_type": event_type,
        "event_filters": event_filters,
        "explicit_datetime": experiment.start_date.isoformat(),
    }
    cohort = cohort_create(
        project=experiment.project,
        user=user,
        fields={
            "name": messages.EXPOSURE_COHORT_NAME.format(name=experiment.name),
            "is_static": is_static,
            "filters": {"properties": {"type": "OR", "values": [{"type": "OR", "values": [behavioural_filter]}]}},
        },
    )
    if is_static:
        static_cohort_fill(cohort=cohort)
    experiment.exposure_cohort = cohort
    experiment.save(update_fields=["exposure_cohort", "updated_at"])
    return cohort
