"""Creating and updating experiments with their flag side effects (§4.2, §4.4), each in one transaction."""

from django.db import transaction

from experiments import messages
from experiments.models import (
    Experiment,
    ExperimentSavedMetric,
    ExperimentToSavedMetric,
    ExperimentType,
    RecalculationTrigger,
)
from experiments.results.batch import metrics_recalculation_trigger_if_scheduled
from experiments.services.flag_sync import (
    draft_flag_filters,
    ensure_flag_eligible,
    holdout_groups,
    new_flag_data,
)
from experiments.services.metric_lists import (
    METRIC_FIELDS,
    ORDERING_FIELDS,
    PRIMARY,
    SECONDARY,
    assign_metric_uuids,
    metric_uuids,
    refresh_fingerprints,
    saved_metric_uuids_by_kind,
    sync_ordering,
    validate_ordering,
    validate_unique_metric_uuids,
)
from experiments_api.exceptions import DomainError
from experiments_api.models import Project, User
from flags.models import FeatureFlag
from flags.services import feature_flag_get_or_create, feature_flag_update

DEFAULT_STATS_METHOD = "bayesian"
# Request keys consumed by the service rather than stored on the experiment.
CONTROL_KEYS = ("saved_metrics_ids", "allow_unknown_events", "update_feature_flag_params", "_create_in_folder")
UPDATABLE_KEYS = frozenset(
    {
        "name",
        "description",
        "start_date",
        "end_date",
        "filters",
        "parameters",
        "archived",
        "deleted",
        "secondary_metrics",
        "holdout",
        "holdout_id",
        "exposure_criteria",
        "metrics",
        "metrics_secondary",
        "stats_config",
        "conclusion",
        "conclusion_comment",
        "primary_metrics_ordered_uuids",
        "secondary_metrics_ordered_uuids",
        "scheduling_config",
        "only_count_matured_users",
        "saved_metrics_ids",
        "allow_unknown_events",
        "update_feature_flag_params",
    }
)


def _pop_control_keys(data: dict) -> dict:
    return {key: data.pop(key) for key in CONTROL_KEYS if key in data}


def _with_default_stats_method(stats_config: dict | None) -> dict:
    config = dict(stats_config or {})
    if not config.get("method"):
        config["method"] = DEFAULT_STATS_METHOD
    return config


def _saved_metric_links(project: Project, items: list[dict] | None) -> list[tuple[ExperimentSavedMetric, dict]]:
    if not items:
        return []
    saved_metrics = ExperimentSavedMetric.objects.in_bulk([item["id"] for item in items])
    return [
        (saved_metrics[item["id"]], item.get("metadata") or {"type": PRIMARY})
        for item in items
        if item["id"] in saved_metrics and saved_metrics[item["id"]].project_id == project.pk
    ]


def _check_metrics(experiment: Experiment, saved: list[tuple[ExperimentSavedMetric, dict]]) -> None:
    saved_uuids = saved_metric_uuids_by_kind([(metric.query, metadata) for metric, metadata in saved])
    validate_unique_metric_uuids(experiment, saved_uuids)
    validate_ordering(experiment, saved_uuids)


@transaction.atomic
def experiment_create(*, project: Project, user: User, data: dict) -> Experiment:
    """Create an experiment, reusing an eligible flag with its key or creating an inactive-until-launch one.

    Parallel creates with one new key share the flag the first of them creates, as they would one at a time."""
    data = dict(data)
    flag_key = data.pop("feature_flag")["key"]
    saved_links = _saved_metric_links(project, _pop_control_keys(data).get("saved_metrics_ids"))
    holdout = data.get("holdout")
    flag_data = new_flag_data(
        key=flag_key,
        experiment_name=data["name"],
        parameters=data.get("parameters"),
        holdout=holdout,
        active=data.get("start_date") is not None,
    )
    flag, created = feature_flag_get_or_create(project=project, user=user, fields=flag_data)
    if created:
        variants_used = flag_data["filters"]["multivariate"]["variants"]
    else:
        ensure_flag_eligible(flag)
        variants_used = flag.variants

    experiment = Experiment(project=project, created_by=user, feature_flag=flag, **data)
    experiment.stats_config = _with_default_stats_method(data.get("stats_config"))
    experiment.metrics = [dict(metric) for metric in data.get("metrics") or []]
    experiment.metrics_secondary = [dict(metric) for metric in data.get("metrics_secondary") or []]
    saved_uuids = saved_metric_uuids_by_kind([(metric.query, metadata) for metric, metadata in saved_links])
    assign_metric_uuids(
        [experiment.metrics, experiment.metrics_secondary], taken=set(saved_uuids[PRIMARY] + saved_uuids[SECONDARY])
    )
    for kind, field in ORDERING_FIELDS.items():
        added = metric_uuids(getattr(experiment, METRIC_FIELDS[kind])) + saved_uuids[kind]
        setattr(experiment, field, sync_ordering(data.get(field), removed=set(), added=added))
    if experiment.type == ExperimentType.WEB:
        experiment.variants = {v["key"]: {"rollout_percentage": v.get("rollout_percentage")} for v in variants_used}
    refresh_fingerprints(experiment)
    _check_metrics(experiment, saved_links)
    experiment.save()
    ExperimentToSavedMetric.objects.bulk_create(
        ExperimentToSavedMetric(experiment=experiment, saved_metric=metric, metadata=metadata)
        for metric, metadata in saved_links
    )
    return experiment


def _disallowed_update_keys(experiment: Experiment, request_data: dict) -> list[str]:
    disallowed = set()
    for key, value in request_data.items():
        if key == "feature_flag_key":
            if value != experiment.feature_flag.key:
                disallowed.add("get_feature_flag_key")
        elif key not in UPDATABLE_KEYS:
            disallowed.add(key)
    return sorted(disallowed)


def _variants_changed(flag: FeatureFlag, parameters: dict | None) -> bool:
    requested = (parameters or {}).get("feature_flag_variants")
    if requested is None:
        return False
    existing_keys = [variant.get("key") for variant in flag.variants]
    if len(requested) != len(existing_keys):
        return True
    return any(existing_keys.count(variant["key"]) != 1 for variant in requested)


def _check_update_allowed(experiment: Experiment, data: dict) -> None:
    flag = experiment.feature_flag
    if (data.get("filters") or {}).get("properties"):
        raise DomainError(messages.GLOBAL_FILTER_PROPERTIES)
    if data.get("deleted") is False and experiment.deleted and flag.deleted:
        raise DomainError(messages.RESTORE_WITH_DELETED_FLAG.format(key=flag.key))
    if not experiment.is_draft:
        if _variants_changed(flag, data.get("parameters")):
            raise DomainError(messages.CANT_UPDATE_VARIANTS)
        if "holdout" in data and data["holdout"] != experiment.holdout:
            raise DomainError(messages.CANT_UPDATE_HOLDOUT)
    elif data.get("start_date") is not None and flag.deleted:
        raise DomainError(messages.LAUNCH_WITH_DELETED_FLAG)


def _sync_flag(experiment: Experiment, *, data: dict, was_draft: bool, sync_running: bool, user: User) -> None:
    flag = experiment.feature_flag
    changes: dict = {}
    if was_draft or sync_running:
        if data.get("parameters"):
            changes["filters"] = draft_flag_filters(flag, parameters=data["parameters"], holdout=experiment.holdout)
        elif "holdout" in data:
            changes["filters"] = {**flag.filters, "holdout_groups": holdout_groups(experiment.holdout)}
    if was_draft and data.get("start_date") is not None:
        changes["active"] = True
    if changes:
        experiment.feature_flag = feature_flag_update(flag=flag, user=user, changes=changes)


def _sync_saved_metrics(experiment: Experiment, items: list[dict] | None) -> list[tuple[ExperimentSavedMetric, dict]]:
    """Diff the links against `items`: removed ones are deleted, new ones created, changed metadata updated."""
    wanted = {metric.pk: (metric, metadata) for metric, metadata in _saved_metric_links(experiment.project, items)}
    existing = {link.saved_metric_id: link for link in experiment.saved_metric_links.select_related("saved_metric")}
    experiment.saved_metric_links.filter(saved_metric_id__in=set(existing) - set(wanted)).delete()
    for metric_id, (metric, metadata) in wanted.items():
        link = existing.get(metric_id)
        if link is None:
            ExperimentToSavedMetric.objects.create(experiment=experiment, saved_metric=metric, metadata=metadata)
        elif link.metadata != metadata:
            link.metadata = metadata
            link.save(update_fields=["metadata", "updated_at"])
    return list(wanted.values())


def _current_saved_links(experiment: Experiment) -> list[tuple[ExperimentSavedMetric, dict]]:
    return [(link.saved_metric, link.metadata) for link in experiment.saved_metric_links.select_related("saved_metric")]


@transaction.atomic
def experiment_update(*, experiment: Experiment, user: User, data: dict, request_data: dict) -> Experiment:
    """Apply the update rules of §4.4. `request_data` is the raw body, whose keys are checked against the
    updatable ones using PostHog's internal names."""
    experiment = (
        Experiment.objects.select_for_update(of=("self",))
        .select_related("feature_flag", "holdout")
        .get(pk=experiment.pk)
    )
    disallowed = _disallowed_update_keys(experiment, request_data)
    if disallowed:
        raise DomainError(messages.CANT_UPDATE_KEYS.format(keys=", ".join(disallowed)))
    data = dict(data)
    data.pop("feature_flag", None)
    control = _pop_control_keys(data)
    _check_update_allowed(experiment, data)

    was_draft = experiment.is_draft
    was_running = not was_draft and experiment.end_date is None
    old_saved = _current_saved_links(experiment)
    old_uuids = {kind: metric_uuids(getattr(experiment, field)) for kind, field in METRIC_FIELDS.items()}
    for field, value in data.items():
        setattr(experiment, field, value)
    if "stats_config" in data:
        experiment.stats_config = _with_default_stats_method(data["stats_config"])
    _sync_flag(
        experiment,
        data=data,
        was_draft=was_draft,
        sync_running=bool(control.get("update_feature_flag_params")),
        user=user,
    )

    saved_links = (
        _sync_saved_metrics(experiment, control["saved_metrics_ids"]) if "saved_metrics_ids" in control else old_saved
    )
    old_saved_uuids = saved_metric_uuids_by_kind([(metric.query, metadata) for metric, metadata in old_saved])
    new_saved_uuids = saved_metric_uuids_by_kind([(metric.query, metadata) for metric, metadata in saved_links])
    for field in METRIC_FIELDS.values():
        if field in data:
            setattr(experiment, field, [dict(metric) for metric in data[field] or []])
    assign_metric_uuids(
        [experiment.metrics or [], experiment.metrics_secondary or []],
        taken=set(new_saved_uuids[PRIMARY] + new_saved_uuids[SECONDARY]),
    )
    # Only metrics added or removed by this update are synced into the ordering; an ordering sent without
    # some of the unchanged metrics is then refused by validate_ordering, as in PostHog.
    for kind, field in ORDERING_FIELDS.items():
        before = set(old_uuids[kind]) | set(old_saved_uuids[kind])
        after = metric_uuids(getattr(experiment, METRIC_FIELDS[kind])) + new_saved_uuids[kind]
        added = [metric_uuid for metric_uuid in after if metric_uuid not in before]
        setattr(
            experiment,
            field,
            sync_ordering(getattr(experiment, field), removed=before - set(after), added=added),
        )
    refresh_fingerprints(experiment)
    _check_metrics(experiment, saved_links)
    experiment.save()
    trigger = _recalculation_trigger(data, control, was_draft=was_draft, was_running=was_running)
    if trigger is not None:
        metrics_recalculation_trigger_if_scheduled(experiment=experiment, trigger=trigger)
    return experiment


def _recalculation_trigger(data: dict, control: dict, *, was_draft: bool, was_running: bool) -> str | None:
    """Which automatic metrics recalculation an update calls for: launch, stop, or changed metrics."""
    if was_draft and data.get("start_date") is not None:
        return RecalculationTrigger.EXPERIMENT_LAUNCH
    if was_running and data.get("end_date") is not None:
        return RecalculationTrigger.EXPERIMENT_STOP
    if "saved_metrics_ids" in control or any(field in data for field in METRIC_FIELDS.values()):
        return RecalculationTrigger.EXPERIMENT_UPDATE
    return None
