"""Mid-experiment power of a running experiment's metric: how many more units and days until the target effect
can be detected, per test variant (spec/analysis.md §8), served next to `calculate_running_time`."""

import datetime as dt

from django.utils import timezone

from experiments import messages
from experiments.metrics import daily_exposures
from experiments.metrics.days import day_end, local_day
from experiments.models import Experiment
from experiments.results.current import baseline_key, current_metric_result, experiment_metrics
from experiments.stats import estimate_effect, statistic_for
from experiments.stats.config import StatsConfig
from experiments.stats.power import mid_experiment_power
from experiments_api.exceptions import DomainError, NotFoundError

RECENT_DAYS = 7


def _recent_daily_exposures(experiment: Experiment) -> dict[str, float]:
    """Mean daily exposures per variant over the last 7 local days (fewer if the experiment is younger)."""
    tz = experiment.project.tzinfo
    today = local_day(experiment.end_date or timezone.now(), tz)
    first = max(local_day(experiment.start_date, tz), today - dt.timedelta(days=RECENT_DAYS - 1))
    days = [first + dt.timedelta(days=offset) for offset in range((today - first).days + 1)]
    per_day = daily_exposures(experiment=experiment, boundaries=[day_end(day, tz) for day in days])
    totals: dict[str, float] = {}
    for counts in per_day:
        for key, count in counts.items():
            totals[key] = totals.get(key, 0) + count
    return {key: total / len(days) for key, total in totals.items()}


def _metric(experiment: Experiment, metric_uuid: str) -> dict:
    for metric in experiment_metrics(experiment):
        if metric["uuid"] == metric_uuid:
            return metric
    raise NotFoundError(messages.METRIC_NOT_FOUND.format(uuid=metric_uuid))


def metric_power(*, experiment: Experiment, metric_uuid: str, target_mde: float) -> dict:
    """Power now and the units and days still needed, per test variant, for the relative `target_mde`."""
    if experiment.start_date is None:
        raise DomainError(messages.EXPERIMENT_NOT_STARTED)
    metric = _metric(experiment, metric_uuid)
    config = StatsConfig.from_dict(experiment.stats_config)
    result = current_metric_result(experiment=experiment, metric=metric)
    baseline = result["baseline"]
    daily = _recent_daily_exposures(experiment)
    goal_metrics = max(1, len(experiment.metrics or []))
    variants = []
    for variant in result["variant_results"]:
        row = {"key": variant["key"], "status": "not-enough-data"}
        effect = None
        if not (variant["validation_failures"] or baseline["validation_failures"]):
            treatment = statistic_for(variant, metric["metric_type"])
            control = statistic_for(baseline, metric["metric_type"])
            effect = estimate_effect(treatment, control, relative=True)
        if effect is not None and effect.variance > 0:
            pair_daily = daily.get(variant["key"], 0) + daily.get(baseline["key"], 0)
            power = mid_experiment_power(
                effect_variance=effect.variance,
                units_so_far=treatment.n + control.n,
                daily_units=pair_daily or None,
                target_mde=target_mde,
                alpha=config.alpha,
                goal_metrics=goal_metrics,
                variants=len(result["variant_results"]) + 1,
                corrected=config.experiment_wide_correction is not None,
            )
            row = {
                "key": variant["key"],
                "status": "powered" if power.scaling_factor == 0 else "underpowered",
                "power": power.power,
                "target_power": power.target_power,
                "additional_units": power.additional_units,
                "days_needed": power.days_needed,
                "upper_bound_achieved": power.upper_bound_achieved,
            }
        variants.append(row)
    return {
        "metric_uuid": metric_uuid,
        "target_mde": target_mde,
        "baseline": baseline_key(experiment),
        "variants": variants,
    }
