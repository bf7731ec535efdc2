"""Metric results in PostHog's shape: the database's per-variant sums run through the statistics engine."""

import datetime as dt

from django.utils import timezone

from experiments import messages
from experiments.metrics import DailyStatistics, daily_exposures, daily_variant_statistics
from experiments.metrics.days import days_from, local_day
from experiments.models import Experiment, ExperimentType
from experiments.results.bandit import bandit_daily_statistics
from experiments.results.correction import in_family
from experiments.results.health import cumulative_multiple, metric_count, result_health
from experiments.stats import (
    StatsConfig,
    adjust_p_values,
    apply_multiple_testing_correction,
    compute_metric_result,
    srm_check,
)
from experiments_api.exceptions import DomainError


def experiment_metrics(experiment: Experiment) -> list[dict]:
    """Inline primary and secondary metrics, then linked saved metrics, those with a uuid."""
    saved = [link.saved_metric.query for link in experiment.saved_metric_links.select_related("saved_metric")]
    metrics = [*(experiment.metrics or []), *(experiment.metrics_secondary or []), *saved]
    return [metric for metric in metrics if isinstance(metric, dict) and metric.get("uuid")]


def baseline_key(experiment: Experiment) -> str:
    return (experiment.stats_config or {}).get("baseline_variant_key") or "control"


def flag_weights(experiment: Experiment, variant_keys) -> dict[str, float]:
    """The flag's rollout percentages of the analysed variants that receive traffic (holdouts left out)."""
    return {
        variant["key"]: float(variant.get("rollout_percentage") or 0)
        for variant in experiment.feature_flag.variants
        if variant.get("key") in variant_keys and (variant.get("rollout_percentage") or 0) > 0
    }


def expected_weights(
    experiment: Experiment, exposures: dict[str, int], expected: dict[str, float] | None
) -> dict[str, float]:
    """The flag's split over the variants with traffic, or a bandit's `expected` units per variant under its
    changing weights."""
    weights = flag_weights(experiment, exposures)
    if expected is None:
        return weights
    return {key: expected[key] for key in weights if expected.get(key, 0) > 0}


def sample_ratio_mismatch(
    experiment: Experiment, exposures: dict[str, int], expected: dict[str, float] | None = None
) -> dict | None:
    """The SRM health block over the variants with traffic, or None with fewer than two of them."""
    weights = expected_weights(experiment, exposures, expected)
    if len(weights) < 2:
        return None
    return srm_check(exposures, weights)


# Breakdown p-values are corrected across segments × test variants with this method unless stats_config names one.
DEFAULT_SEGMENT_CORRECTION = "bh"


def _breakdown_results(experiment: Experiment, statistics: DailyStatistics, index: int) -> list[dict]:
    """Each segment as its own exploratory A/B test; frequentist p-values are corrected across segments × test
    variants (`p_value_adjusted`, which `significant` then uses); Bayesian chances to win are left as they are."""
    config = StatsConfig.from_dict(experiment.stats_config)
    items = []
    for segment in statistics.segments:
        result = compute_metric_result(
            segment.variants[index],
            metric_type=statistics.spec.metric_type,
            stats_config=experiment.stats_config,
            baseline_key=baseline_key(experiment),
            metric_prior=statistics.spec.prior,
        )
        items.append({"breakdown_value": list(segment.breakdown_value), **result, "exploratory": True})
    tested = [
        variant
        for item in items
        for variant in item["variant_results"]
        if variant.get("method") == "frequentist" and "p_value" in variant
    ]
    method = config.experiment_wide_correction or config.multiple_testing_correction or DEFAULT_SEGMENT_CORRECTION
    for variant, adjusted in zip(tested, adjust_p_values([v["p_value"] for v in tested], method), strict=True):
        variant["p_value_adjusted"] = adjusted
        variant["significant"] = adjusted < config.alpha
    return items


def _assemble(
    experiment: Experiment,
    statistics: DailyStatistics,
    index: int,
    *,
    multiple: int,
    query_to: dt.datetime,
    expected: dict[str, float] | None,
    correct_variants: bool,
    metric_count: int,
) -> dict:
    result = compute_metric_result(
        statistics.variants[index],
        metric_type=statistics.spec.metric_type,
        stats_config=experiment.stats_config,
        baseline_key=baseline_key(experiment),
        metric_prior=statistics.spec.prior,
    )
    if statistics.spec.breakdowns:
        result["breakdown_results"] = _breakdown_results(experiment, statistics, index)
    result["sample_ratio_mismatch"] = sample_ratio_mismatch(experiment, statistics.exposures[index], expected)
    result["health"] = result_health(
        experiment=experiment,
        weights=expected_weights(experiment, statistics.exposures[index], expected),
        exposures=statistics.exposures[index],
        multiple=multiple,
        query_to=query_to,
        metric_count=metric_count,
    )
    config = StatsConfig.from_dict(experiment.stats_config)
    if config.multiple_testing_correction and correct_variants:
        # Across the test variants of this metric; each metric's result is computed on its own.
        result = apply_multiple_testing_correction([result], config.multiple_testing_correction, alpha=config.alpha)[0]
    return result


def metric_results_as_of(*, experiment: Experiment, metric: dict, boundaries: list[dt.datetime]) -> list[dict]:
    """The metric's cumulative result as of each boundary (ascending, exclusive), from one read of the events.

    Its p-values are stored raw when the metric is in the experiment-wide correction's family (the correction is
    applied when results are served, experiments.results.correction, and covers this metric's variants too);
    otherwise `multiple_testing_correction` corrects them across its test variants here."""
    if experiment.start_date is None:
        raise DomainError(messages.EXPERIMENT_NOT_STARTED)
    statistics, expected = variant_statistics(experiment=experiment, metric=metric, boundaries=boundaries)
    baseline = baseline_key(experiment)
    if all(row["key"] != baseline for row in statistics.variants[0]):
        raise DomainError(messages.UNKNOWN_BASELINE_VARIANT.format(key=baseline), attr="stats_config")
    multiple = statistics.multiple
    if multiple is None:
        multiple = cumulative_multiple(daily_exposures(experiment=experiment, boundaries=boundaries))
    correct_variants = not in_family(experiment, metric)
    metrics = metric_count(experiment)
    return [
        _assemble(
            experiment,
            statistics,
            index,
            multiple=multiple[index],
            query_to=boundary,
            expected=expected[index],
            correct_variants=correct_variants,
            metric_count=metrics,
        )
        for index, boundary in enumerate(boundaries)
    ]


def variant_statistics(
    *, experiment: Experiment, metric: dict, boundaries: list[dt.datetime]
) -> tuple[DailyStatistics, list[dict[str, float] | None]]:
    """The metric's per-variant rows as of each boundary, and per boundary the expected units per variant for the
    SRM check (None: the flag's split). A bandit's rows (and segments) are weighted over its reweight periods."""
    if experiment.type == ExperimentType.BANDIT:
        bandit = bandit_daily_statistics(experiment=experiment, metric=metric, boundaries=boundaries)
        return bandit.statistics, bandit.expected_weights
    statistics = daily_variant_statistics(experiment=experiment, metric=metric, boundaries=boundaries)
    return statistics, [None] * len(boundaries)


def experiment_days(experiment: Experiment) -> list[dt.date]:
    """Local days of the project from the start through the end date, or through today while running."""
    tz = experiment.project.tzinfo
    last = experiment.end_date or timezone.now()
    return days_from(local_day(experiment.start_date, tz), local_day(max(last, experiment.start_date), tz))


def current_query_to(experiment: Experiment) -> dt.datetime:
    """Now, or the end date of a stopped experiment: results stop growing once it is stopped."""
    now = timezone.now()
    return min(now, experiment.end_date) if experiment.end_date else now


def current_metric_result(*, experiment: Experiment, metric: dict) -> dict:
    return metric_results_as_of(experiment=experiment, metric=metric, boundaries=[current_query_to(experiment)])[0]
