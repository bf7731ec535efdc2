"""The health block of every metric result: `{findings, srm, multiple_exposures}` from
`experiments.stats.health_checks`, fed with the result's exposures, the `$multiple` units, the experiment's
metrics and its flag's state."""

import datetime as dt

from experiments.metrics import MULTIPLE_VARIANT_KEY
from experiments.models import Experiment
from experiments.stats import srm_p_value
from experiments.stats.health_checks import health_findings, multiple_exposures_summary, srm_status


def metric_count(experiment: Experiment) -> int:
    """The experiment's metrics (inline and saved): read once per result set, not once per day."""
    inline = len(experiment.metrics or []) + len(experiment.metrics_secondary or [])
    return inline + experiment.saved_metrics.count() if experiment.pk else inline


def _srm_block(weights: dict[str, float], exposures: dict[str, int]) -> dict | None:
    """{p_value, expected, observed, status} over the variants with traffic; None with fewer than two."""
    if len(weights) < 2:
        return None
    observed = {key: exposures.get(key, 0) for key in weights}
    total, weight_sum = sum(observed.values()), sum(weights.values())
    p_value = srm_p_value(list(observed.values()), list(weights.values()))
    return {
        "p_value": p_value,
        "expected": {key: weight / weight_sum * total for key, weight in weights.items()},
        "observed": observed,
        "status": srm_status(observed, p_value),
    }


def result_health(
    *,
    experiment: Experiment,
    weights: dict[str, float],
    exposures: dict[str, int],
    multiple: int,
    query_to: dt.datetime,
    metric_count: int,
) -> dict:
    """`exposures` are the units analysed per variant as of `query_to`; `multiple` those seen in several variants."""
    srm = _srm_block(weights, exposures)
    percentages = {
        variant["key"]: float(variant.get("rollout_percentage") or 0) for variant in experiment.feature_flag.variants
    }
    findings = health_findings(
        exposures=exposures,
        multiple=multiple,
        srm_p_value=srm["p_value"] if srm else None,
        hours_since_launch=(query_to - experiment.start_date).total_seconds() / 3600,
        metric_count=metric_count,
        flag_active=experiment.feature_flag.active,
        variant_percentages=percentages,
        running=experiment.end_date is None or query_to < experiment.end_date,
    )
    return {
        "findings": findings,
        "srm": srm,
        "multiple_exposures": multiple_exposures_summary(multiple=multiple, total=sum(exposures.values()) + multiple),
    }


def cumulative_multiple(per_bucket: list[dict[str, int]]) -> list[int]:
    """Per boundary, the `$multiple` units counted by `daily_exposures` up to that bucket (by first exposure)."""
    running, totals = 0, []
    for counts in per_bucket:
        running += counts.get(MULTIPLE_VARIANT_KEY, 0)
        totals.append(running)
    return totals
