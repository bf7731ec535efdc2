"""Multi-armed bandits (analysis.md §7): the scheduled reweight of a running bandit's flag from its decision metric's
posterior (Thompson sampling), and the equal weights a bandit starts from at launch and reset.

Runs fall at launch + burn-in + k·interval (k = 0, 1, …); each run is recorded once per launch in the activity log
(`bandit_reweight`) with its inputs, whether or not it changed the weights, so a rerun of the same run does nothing.
"""

import copy
import datetime as dt
import hashlib

from django.db import transaction

from experiments import messages
from experiments.definitions.bandit import BanditProblem, BanditSettings, experiment_bandit
from experiments.models import Experiment, ExperimentActivity, ExperimentStatus, ExperimentType
from experiments.results.bandit import (
    BANDIT_EVENT_FIELD,
    BANDIT_REWEIGHT_ACTIVITY,
    bandit_events,
    flag_percentages_by_key,
)
from experiments.results.current import variant_statistics
from experiments.stats import statistic_for
from experiments.stats.bandits import BanditArm, bandit_weights, flag_percentages
from experiments_api.exceptions import DomainError
from flags.models import FeatureFlag
from flags.services import feature_flag_update

SEED_MODULUS = 2**32


def equal_weight_filters(flag: FeatureFlag) -> dict:
    """The flag's filters with its variants at equal percentages (the bandit's explore phase)."""
    keys = [variant["key"] for variant in flag.variants]
    equal = flag_percentages([1 / len(keys)] * len(keys))
    return filters_with_percentages(flag, dict(zip(keys, equal, strict=True)))


def filters_with_percentages(flag: FeatureFlag, percentages: dict[str, int]) -> dict:
    """The flag's filters with each variant's rollout percentage taken from `percentages` (by key)."""
    filters = copy.deepcopy(flag.filters)
    filters["multivariate"]["variants"] = [
        {**variant, "rollout_percentage": percentages[variant["key"]]} for variant in flag.variants
    ]
    return filters


def bandit_run_number(*, start: dt.datetime, settings: BanditSettings, now: dt.datetime) -> int | None:
    """The last run due by `now` (0 at the end of the burn-in), or None during the burn-in."""
    since_burn_in = now - start - settings.burn_in
    if since_burn_in < dt.timedelta(0):
        return None
    return int(since_burn_in / settings.update_interval)


def bandit_seed(*, experiment_id: int, run: int, seed: int | None) -> int:
    """Reproducible per experiment, run and configured seed; a new draw each run."""
    digest = hashlib.sha256(f"{experiment_id}:{run}:{'' if seed is None else seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_MODULUS


def _arm(row: dict, metric_type: str) -> BanditArm:
    """Binomial metrics as sample means, ratios as plain ratios (no CUPED)."""
    n = row["number_of_samples"]
    if n < 2:
        return BanditArm(n=n, mean=0.0, variance=0.0)
    statistic = statistic_for(row, "mean" if metric_type == "funnel" else metric_type)
    return BanditArm(n=n, mean=statistic.mean, variance=statistic.variance)


def _event(experiment: Experiment, settings: BanditSettings, run: int, now: dt.datetime, problem: str | None) -> dict:
    """Compute the run: the decision metric's current (period-weighted) rows, the arms and their weights; a
    `problem` with the stored settings is recorded as the error."""
    metric = settings.decision_metric
    current = {key: value / 100 for key, value in flag_percentages_by_key(experiment).items()}
    seed = bandit_seed(experiment_id=experiment.pk, run=run, seed=settings.seed)
    event = {
        "run": run,
        "date": now.isoformat(),
        "decision_metric_uuid": (metric or {}).get("uuid"),
        "seed": seed,
        "top_two": settings.top_two,
        "min_variation_weight": settings.min_variation_weight,
        "current_weights": current,
        "updated_weights": None,
        "applied_percentages": None,
        "best_arm_probabilities": None,
        "variants": [],
        "update_message": None,
        "error": None,
        "weights_were_updated": False,
    }
    if problem is not None:
        return {**event, "error": problem}
    if metric is None:
        return {**event, "error": messages.BANDIT_NO_DECISION_METRIC}
    try:
        statistics, _expected = variant_statistics(experiment=experiment, metric=metric, boundaries=[now])
    except DomainError as refused:
        return {**event, "error": refused.message}
    rows = {row["key"]: row for row in statistics.variants[0]}
    keys = list(current)
    missing = [key for key in keys if key not in rows]
    if missing:
        return {**event, "error": messages.BANDIT_VARIANTS_NOT_ANALYSED.format(keys=", ".join(missing))}
    arms = [_arm(rows[key], statistics.spec.metric_type) for key in keys]
    event["variants"] = [
        {"key": key, "users": arm.n, "mean": arm.mean, "variance": arm.variance}
        for key, arm in zip(keys, arms, strict=True)
    ]
    weights = bandit_weights(
        arms,
        seed=seed,
        top_two=settings.top_two,
        min_weight=settings.min_variation_weight,
        inverse=metric.get("goal") == "decrease",
    )
    if weights.weights is None:
        return {**event, "update_message": weights.update_message}
    return {
        **event,
        "updated_weights": dict(zip(keys, weights.weights, strict=True)),
        "applied_percentages": dict(zip(keys, flag_percentages(weights.weights), strict=True)),
        "best_arm_probabilities": dict(zip(keys, weights.best_arm_probabilities, strict=True)),
        "weights_were_updated": True,
    }


def bandit_reweight(*, experiment: Experiment, now: dt.datetime) -> ExperimentActivity | None:
    """Reweight a running bandit's flag if a run is due at `now` and not yet recorded; returns the activity entry,
    or None when there was nothing to do (not a running bandit, burn-in, run already recorded).

    Fewer than 100 units in an arm, or a decision metric that cannot be computed, leaves the weights as they are and
    is recorded with the message. Writing the weights bumps the flag's version.
    """
    with transaction.atomic():
        experiment = (
            Experiment.objects.select_for_update(of=("self",))
            .select_related("feature_flag", "project", "holdout")
            .get(pk=experiment.pk)
        )
        if experiment.type != ExperimentType.BANDIT or experiment.deleted:
            return None
        if experiment.status != ExperimentStatus.RUNNING:
            return None
        try:
            settings, problem = experiment_bandit(experiment), None
        except BanditProblem as refused:
            # Stored settings that no longer fit (the flag's variants changed): recorded on the default schedule.
            settings, problem = BanditSettings(decision_metric=None), refused.message
        run = bandit_run_number(start=experiment.start_date, settings=settings, now=now)
        if run is None or any(event["run"] == run for event in bandit_events(experiment)):
            return None
        event = _event(experiment, settings, run, now, problem)
        changes = []
        if event["weights_were_updated"]:
            before = flag_percentages_by_key(experiment)
            flag = experiment.feature_flag
            feature_flag_update(
                flag=flag,
                user=None,
                changes={"filters": filters_with_percentages(flag, event["applied_percentages"])},
                expected_version=flag.version,
            )
            changes.append({"field": "feature_flag_variants", "before": before, "after": event["applied_percentages"]})
        changes.append({"field": BANDIT_EVENT_FIELD, "before": None, "after": event})
        return ExperimentActivity.objects.create(
            project_id=experiment.project_id,
            experiment=experiment,
            user=None,
            activity=BANDIT_REWEIGHT_ACTIVITY,
            changes=changes,
        )
