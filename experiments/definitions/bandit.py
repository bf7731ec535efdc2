"""The one parser of a bandit experiment's settings (`parameters.bandit`, analysis.md §7) and its requirements on
the rest of the experiment: a Bayesian stats method, `first_seen` exposure handling and a decision metric that is
a primary, non-quantile metric.

The serializer turns a `BanditProblem` into a 400 on its `attr`; the reweight service parses the stored experiment
with the same function, so a bandit that was accepted always reweights.
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from experiments import messages
from experiments.definitions.exposure import ExposureProblem, parse_exposure_criteria
from experiments.models import Experiment
from experiments.stats.config import StatsConfig, StatsConfigError

DEFAULT_MIN_VARIATION_WEIGHT = 0.01
DEFAULT_BURN_IN_HOURS = 24
DEFAULT_UPDATE_INTERVAL_HOURS = 24
MAX_HOURS = 24 * 365
MAX_SEED = 2**63
SETTINGS = ("decision_metric_uuid", "top_two", "min_variation_weight", "burn_in_hours", "update_interval_hours", "seed")
QUANTILE_METRIC_TYPE = "quantile"


class BanditProblem(Exception):
    """What is wrong with a bandit; `attr` is the experiment field to name in the 400."""

    def __init__(self, message: str, attr: str) -> None:
        super().__init__(message)
        self.message = message
        self.attr = attr


@dataclass(frozen=True)
class BanditSettings:
    decision_metric: dict | None  # None: a draft without primary metrics yet
    top_two: bool = False
    min_variation_weight: float = DEFAULT_MIN_VARIATION_WEIGHT
    burn_in: dt.timedelta = dt.timedelta(hours=DEFAULT_BURN_IN_HOURS)
    update_interval: dt.timedelta = dt.timedelta(hours=DEFAULT_UPDATE_INTERVAL_HOURS)
    seed: int | None = None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _boolean(section: Mapping, setting: str) -> bool:
    value = section.get(setting, False)
    if not isinstance(value, bool):
        raise BanditProblem(messages.BANDIT_NOT_BOOLEAN.format(setting=setting), "parameters")
    return value


def _hours(section: Mapping, setting: str, default: float, minimum: float) -> dt.timedelta:
    value = section.get(setting, default)
    if not (_is_number(value) and minimum <= value <= MAX_HOURS):
        raise BanditProblem(
            messages.BANDIT_HOURS_INVALID.format(setting=setting, minimum=minimum, maximum=MAX_HOURS), "parameters"
        )
    return dt.timedelta(hours=value)


def _min_weight(section: Mapping, variant_count: int) -> float:
    value = section.get("min_variation_weight", DEFAULT_MIN_VARIATION_WEIGHT)
    if not (_is_number(value) and 0 <= value < 1 / variant_count):
        raise BanditProblem(messages.BANDIT_MIN_WEIGHT_INVALID.format(variants=variant_count), "parameters")
    return float(value)


def _seed(section: Mapping) -> int | None:
    value = section.get("seed")
    if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_SEED):
        raise BanditProblem(messages.BANDIT_SEED_INVALID, "parameters")
    return value


def _decision_metric(section: Mapping, primary_metrics: Sequence[dict]) -> dict | None:
    uuid = section.get("decision_metric_uuid")
    if uuid is None:
        metric = primary_metrics[0] if primary_metrics else None
    else:
        if not isinstance(uuid, str) or not uuid:
            raise BanditProblem(messages.BANDIT_METRIC_UUID_INVALID, "parameters")
        metric = next((metric for metric in primary_metrics if metric.get("uuid") == uuid), None)
        if metric is None:
            raise BanditProblem(messages.BANDIT_UNKNOWN_DECISION_METRIC.format(uuid=uuid), "parameters")
    if metric is not None and metric.get("metric_type") == QUANTILE_METRIC_TYPE:
        raise BanditProblem(messages.BANDIT_QUANTILE_DECISION_METRIC, "parameters")
    return metric


def refuse_quantile_metrics(metrics_by_field: Mapping[str, Sequence[Any]]) -> None:
    """A bandit analyses every metric by combining per-period sums (`stats.bandits.period_weighted_row`), which a
    quantile is not, so no metric of a bandit may be a quantile. Raises BanditProblem naming the field."""
    for field, metrics in metrics_by_field.items():
        if any(isinstance(metric, Mapping) and metric.get("metric_type") == QUANTILE_METRIC_TYPE for metric in metrics):
            raise BanditProblem(messages.BANDIT_QUANTILE_METRIC, field)


def _require_bayesian(stats_config: Any) -> None:
    try:
        method = StatsConfig.from_dict(stats_config).method
    except StatsConfigError:
        return  # the stats_config validator reports it
    if method != "bayesian":
        raise BanditProblem(messages.BANDIT_NEEDS_BAYESIAN.format(method=method), "stats_config")


def _require_first_seen(exposure_criteria: Any) -> None:
    try:
        handling = parse_exposure_criteria(exposure_criteria).multiple_variant_handling
    except ExposureProblem:
        return  # the exposure_criteria validator reports it
    if handling != "first_seen":
        raise BanditProblem(messages.BANDIT_NEEDS_FIRST_SEEN, "exposure_criteria")


def parse_bandit(
    *,
    parameters: Any,
    stats_config: Any,
    exposure_criteria: Any,
    primary_metrics: Sequence[dict],
    variant_count: int,
) -> BanditSettings:
    """The bandit's settings with defaults; `primary_metrics` in display order (the first is the default
    decision metric). Raises BanditProblem."""
    section = (parameters or {}).get("bandit") if isinstance(parameters, Mapping) else None
    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise BanditProblem(messages.BANDIT_NOT_OBJECT, "parameters")
    unknown = sorted(set(section) - set(SETTINGS))
    if unknown:
        raise BanditProblem(
            messages.BANDIT_UNKNOWN_SETTINGS.format(keys=", ".join(unknown), allowed=", ".join(SETTINGS)), "parameters"
        )
    settings = BanditSettings(
        decision_metric=_decision_metric(section, primary_metrics),
        top_two=_boolean(section, "top_two"),
        min_variation_weight=_min_weight(section, max(variant_count, 2)),
        burn_in=_hours(section, "burn_in_hours", DEFAULT_BURN_IN_HOURS, 0),
        update_interval=_hours(section, "update_interval_hours", DEFAULT_UPDATE_INTERVAL_HOURS, 1),
        seed=_seed(section),
    )
    _require_bayesian(stats_config)
    _require_first_seen(exposure_criteria)
    return settings


def ordered_primary_metrics(inline: Sequence[Any], saved: Sequence[Any], ordering: Any) -> list[dict]:
    """Inline primary metrics then saved primary ones, reordered by `primary_metrics_ordered_uuids` when set."""
    metrics = [metric for metric in [*inline, *saved] if isinstance(metric, dict)]
    if not isinstance(ordering, list):
        return metrics
    position = {uuid: index for index, uuid in enumerate(ordering)}
    return sorted(metrics, key=lambda metric: position.get(metric.get("uuid"), len(position)))


def is_primary_link(metadata: Mapping | None) -> bool:
    """A saved-metric link without a type is primary, as the create service stores it."""
    return (metadata or {}).get("type", "primary") == "primary"


def saved_primary_metrics(experiment: Experiment) -> list[dict]:
    links = experiment.saved_metric_links.select_related("saved_metric").order_by("pk")
    return [link.saved_metric.query for link in links if is_primary_link(link.metadata)]


def experiment_primary_metrics(experiment: Experiment) -> list[dict]:
    return ordered_primary_metrics(
        experiment.metrics or [], saved_primary_metrics(experiment), experiment.primary_metrics_ordered_uuids
    )


def experiment_bandit(experiment: Experiment) -> BanditSettings:
    """The stored bandit's settings. Raises BanditProblem."""
    return parse_bandit(
        parameters=experiment.parameters,
        stats_config=experiment.stats_config,
        exposure_criteria=experiment.exposure_criteria,
        primary_metrics=experiment_primary_metrics(experiment),
        variant_count=len(experiment.feature_flag.variants),
    )
