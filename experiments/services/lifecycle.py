"""Lifecycle actions (launch, end, pause, resume, reset, ship_variant, archive, unarchive, copy_to_project).

Each runs in one transaction with its flag change, holding a row lock on the experiment so concurrent calls
apply one after the other (the second then fails its state check), and writes one activity-log entry.
"""

import copy

from django.db import transaction
from django.utils import timezone

from experiments import messages
from experiments.definitions.bandit import BanditProblem, experiment_bandit
from experiments.definitions.experiment import CONTROL_VARIANT_KEY
from experiments.models import Experiment, ExperimentActivity, ExperimentType, RecalculationTrigger
from experiments.results.batch import metrics_recalculation_trigger_if_scheduled
from experiments.services.actions import experiment_copy_data
from experiments.services.bandits import equal_weight_filters
from experiments.services.crud import experiment_create
from experiments.services.metric_lists import refresh_fingerprints
from experiments_api.exceptions import DomainError
from experiments_api.models import Project, User
from flags.services import feature_flag_update

TRACKED_FIELDS = ("start_date", "end_date", "archived", "conclusion", "conclusion_comment")


def _locked(experiment: Experiment) -> Experiment:
    return (
        Experiment.objects.select_for_update(of=("self",))
        .select_related("feature_flag", "project")
        .get(pk=experiment.pk)
    )


def _snapshot(experiment: Experiment) -> dict:
    return {
        **{field: getattr(experiment, field) for field in TRACKED_FIELDS},
        "feature_flag_active": experiment.feature_flag.active,
        "feature_flag_filters": experiment.feature_flag.filters,
    }


def _json_value(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def activity_log(*, experiment: Experiment, user: User | None, activity: str, before: dict, after: dict) -> None:
    changes = [
        {"field": field, "before": _json_value(before[field]), "after": _json_value(after[field])}
        for field in before
        if before[field] != after.get(field)
    ]
    ExperimentActivity.objects.create(
        project_id=experiment.project_id, experiment=experiment, user=user, activity=activity, changes=changes
    )


def _require_launched(experiment: Experiment) -> None:
    if experiment.start_date is None:
        raise DomainError(messages.NOT_LAUNCHED)


def _require_running(experiment: Experiment) -> None:
    _require_launched(experiment)
    if experiment.end_date is not None:
        raise DomainError(messages.ALREADY_ENDED)


def _set_flag(experiment: Experiment, user: User, **changes) -> None:
    experiment.feature_flag = feature_flag_update(flag=experiment.feature_flag, user=user, changes=changes)


def _apply(experiment: Experiment, user: User, activity: str, change, *, trigger: str | None = None) -> Experiment:
    """Lock the experiment, run `change(experiment)`, record the before/after in the activity log and, with a
    `trigger`, start the automatic metrics recalculation of an experiment that opted into timeseries; all in one
    transaction."""
    with transaction.atomic():
        experiment = _locked(experiment)
        before = _snapshot(experiment)
        change(experiment)
        experiment.save()
        activity_log(experiment=experiment, user=user, activity=activity, before=before, after=_snapshot(experiment))
        if trigger is not None:
            metrics_recalculation_trigger_if_scheduled(experiment=experiment, trigger=trigger)
    return experiment


def _require_bandit_decision_metric(experiment: Experiment) -> None:
    try:
        settings = experiment_bandit(experiment)
    except BanditProblem as problem:
        raise DomainError(problem.message, attr=problem.attr) from None
    if settings.decision_metric is None:
        raise DomainError(messages.BANDIT_NO_DECISION_METRIC, attr="metrics")


def experiment_launch(*, experiment: Experiment, user: User) -> Experiment:
    def launch(experiment: Experiment) -> None:
        if experiment.start_date is not None:
            raise DomainError(messages.ALREADY_LAUNCHED)
        flag = experiment.feature_flag
        if flag.deleted:
            raise DomainError(messages.LAUNCH_WITH_DELETED_FLAG)
        if len(flag.variants) < 2:
            raise DomainError(messages.ONE_VARIANT)
        if not any(variant.get("key") == CONTROL_VARIANT_KEY for variant in flag.variants):
            raise DomainError(messages.FLAG_NEEDS_CONTROL)
        experiment.start_date = timezone.now()
        if experiment.type == ExperimentType.BANDIT:
            _require_bandit_decision_metric(experiment)
            # A bandit explores at equal weights until its first reweight.
            _set_flag(experiment, user, active=True, filters=equal_weight_filters(flag))
        else:
            _set_flag(experiment, user, active=True)
        refresh_fingerprints(experiment)

    return _apply(experiment, user, "launched", launch, trigger=RecalculationTrigger.EXPERIMENT_LAUNCH)


def experiment_end(
    *, experiment: Experiment, user: User, conclusion: str | None = None, conclusion_comment: str | None = None
) -> Experiment:
    def end(experiment: Experiment) -> None:
        _require_running(experiment)
        experiment.end_date = timezone.now()
        experiment.conclusion = conclusion
        experiment.conclusion_comment = conclusion_comment

    return _apply(experiment, user, "ended", end, trigger=RecalculationTrigger.EXPERIMENT_STOP)


def experiment_pause(*, experiment: Experiment, user: User) -> Experiment:
    def pause(experiment: Experiment) -> None:
        _require_running(experiment)
        if not experiment.feature_flag.active:
            raise DomainError(messages.ALREADY_PAUSED)
        _set_flag(experiment, user, active=False)

    return _apply(experiment, user, "paused", pause)


def experiment_resume(*, experiment: Experiment, user: User) -> Experiment:
    def resume(experiment: Experiment) -> None:
        _require_running(experiment)
        if experiment.feature_flag.active:
            raise DomainError(messages.NOT_PAUSED)
        _set_flag(experiment, user, active=True)

    return _apply(experiment, user, "resumed", resume)


def experiment_reset(*, experiment: Experiment, user: User) -> Experiment:
    """Back to draft; the flag is left as it is (users keep their variants if it stays active), except that a
    bandit's variants go back to equal weights."""

    def reset(experiment: Experiment) -> None:
        if experiment.start_date is None:
            raise DomainError(messages.ALREADY_DRAFT)
        experiment.start_date = experiment.end_date = None
        experiment.conclusion = experiment.conclusion_comment = None
        experiment.archived = False
        if experiment.type == ExperimentType.BANDIT:
            _set_flag(experiment, user, filters=equal_weight_filters(experiment.feature_flag))
        refresh_fingerprints(experiment)

    return _apply(experiment, user, "reset", reset)


def shipped_flag_filters(filters: dict, *, variant_key: str, release_to_everyone: bool) -> dict:
    """The flag's filters serving `variant_key` to 100% of the variant split; with `release_to_everyone`, a
    catch-all release condition at 100% is added so every user gets it."""
    shipped = copy.deepcopy(filters)
    variants = shipped["multivariate"]["variants"]
    shipped["multivariate"]["variants"] = [
        {**variant, "rollout_percentage": 100 if variant["key"] == variant_key else 0} for variant in variants
    ]
    if release_to_everyone:
        shipped["groups"] = [*(shipped.get("groups") or []), {"properties": [], "rollout_percentage": 100}]
    return shipped


def experiment_ship_variant(
    *,
    experiment: Experiment,
    user: User,
    variant_key: str,
    release_to_everyone: bool = False,
    conclusion: str | None = None,
    conclusion_comment: str | None = None,
) -> Experiment:
    def ship(experiment: Experiment) -> None:
        _require_launched(experiment)
        flag = experiment.feature_flag
        if flag.deleted:
            raise DomainError(messages.FLAG_DELETED)
        valid = [variant.get("key") for variant in flag.variants]
        if variant_key not in valid:
            raise DomainError(
                messages.UNKNOWN_VARIANT.format(variant=variant_key, valid=", ".join(valid)), attr="variant_key"
            )
        filters = shipped_flag_filters(flag.filters, variant_key=variant_key, release_to_everyone=release_to_everyone)
        experiment.feature_flag = feature_flag_update(
            flag=flag, user=user, changes={"filters": filters}, expected_version=flag.version
        )
        if experiment.end_date is None:
            experiment.end_date = timezone.now()
        if conclusion is not None:
            experiment.conclusion = conclusion
        if conclusion_comment is not None:
            experiment.conclusion_comment = conclusion_comment

    return _apply(experiment, user, "shipped_variant", ship)


def experiment_archive(*, experiment: Experiment, user: User, disable_feature_flag: bool = False) -> Experiment:
    def archive(experiment: Experiment) -> None:
        if experiment.archived:
            raise DomainError(messages.ALREADY_ARCHIVED)
        if experiment.end_date is None:
            raise DomainError(messages.ARCHIVE_BEFORE_END)
        experiment.archived = True
        if disable_feature_flag and experiment.feature_flag.active:
            _set_flag(experiment, user, active=False)

    return _apply(experiment, user, "archived", archive)


def experiment_unarchive(*, experiment: Experiment, user: User) -> Experiment:
    def unarchive(experiment: Experiment) -> None:
        if not experiment.archived:
            raise DomainError(messages.NOT_ARCHIVED)
        experiment.archived = False

    return _apply(experiment, user, "unarchived", unarchive)


def experiment_copy_to_project(
    *,
    experiment: Experiment,
    user: User,
    target_project_id: int,
    feature_flag_key: str | None = None,
    name: str | None = None,
) -> Experiment:
    """Copy as a new draft into another project of the same organization that the user is a member of.
    Saved-metric links and the holdout belong to the source project and are not copied."""
    target = Project.objects.filter(
        pk=target_project_id, organization_id=experiment.project.organization_id, memberships__user=user
    ).first()
    if target is None:
        raise DomainError(
            messages.TARGET_PROJECT_INVALID.format(project_id=target_project_id), attr="target_project_id"
        )
    data = experiment_copy_data(
        experiment, name=name or experiment.name, feature_flag_key=feature_flag_key or experiment.feature_flag.key
    )
    with transaction.atomic():
        copied = experiment_create(project=target, user=user, data=data)
        activity_log(
            experiment=copied, user=user, activity="copied", before={"source": None}, after={"source": experiment.pk}
        )
        activity_log(
            experiment=experiment,
            user=user,
            activity="copied_to_project",
            before={"copy": None},
            after={"copy": {"project_id": target.pk, "experiment_id": copied.pk}},
        )
    return copied
