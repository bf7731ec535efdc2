"""Experiment-wide multiple-testing correction (analysis.md §6): `stats_config.multiple_testing.method` corrects the
frequentist p-values of every primary metric × test variant together (secondary metrics too with
`include_secondary`), when results are served.

Each metric's result is computed and stored on its own, at its own time, so the correction is applied when results
are read, from the stored per-metric results of the same local day (the day `timeseries_results` files a row
under; the latest row of a day wins): a stored result always carries its raw p-values, and the corrected ones are
always those of the current settings and of the family's current results, never left stale by a recalculation of
another metric or a change of `stats_config`. A family metric without a completed result that day counts its
tests as p = 1 (its p-values are unknown), which keeps Holm and Benjamini–Hochberg valid whatever they are; a
variant the engine did not test (validation failures) is not part of the family.
"""

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from experiments.definitions.fingerprint import experiment_metric_fingerprint
from experiments.models import Experiment, ExperimentMetricResult, MetricResultStatus
from experiments.stats import StatsConfig
from experiments.stats.multiple_testing import experiment_wide_correction

ONE_MICROSECOND = dt.timedelta(microseconds=1)
SECONDARY = "secondary"


@dataclass(frozen=True)
class CorrectionFamily:
    method: str
    alpha: float
    # The family's metric uuids (primary, then secondary) and the fingerprint each is stored under now.
    metric_fingerprints: dict[str, str]

    @property
    def metric_uuids(self) -> list[str]:
        return list(self.metric_fingerprints)


def _family_metrics(experiment: Experiment, *, include_secondary: bool) -> list[dict]:
    saved = [(link.saved_metric.query, link.metadata or {}) for link in experiment.saved_metric_links.all()]
    metrics = [*(experiment.metrics or []), *(query for query, metadata in saved if metadata.get("type") != SECONDARY)]
    if include_secondary:
        metrics += [
            *(experiment.metrics_secondary or []),
            *(query for query, metadata in saved if metadata.get("type") == SECONDARY),
        ]
    return [metric for metric in metrics if isinstance(metric, dict) and metric.get("uuid")]


def correction_family(experiment: Experiment) -> CorrectionFamily | None:
    """The experiment's family, or None when no experiment-wide method is set or the method is Bayesian (chances
    to win are never adjusted)."""
    config = StatsConfig.from_dict(experiment.stats_config)
    if config.experiment_wide_correction is None or config.method != "frequentist":
        return None
    metrics = _family_metrics(experiment, include_secondary=config.correct_secondary_metrics)
    return CorrectionFamily(
        method=config.experiment_wide_correction,
        alpha=config.alpha,
        metric_fingerprints={metric["uuid"]: experiment_metric_fingerprint(experiment, metric) for metric in metrics},
    )


def in_family(experiment: Experiment, metric: Mapping) -> bool:
    family = correction_family(experiment)
    return family is not None and metric.get("uuid") in family.metric_fingerprints


def result_day(query_to: dt.datetime, tz) -> str:
    """The local day a result as of `query_to` (exclusive) belongs to."""
    return (query_to - ONE_MICROSECOND).astimezone(tz).date().isoformat()


def corrected_results(family: CorrectionFamily, results: Mapping[str, dict | None]) -> dict[str, dict]:
    """The family's results of one day (metric uuid → result, None when it has none) with every tested variant
    corrected and an `experiment_wide_correction` block; only the metrics with a result are returned."""
    present = {uuid: result for uuid, result in results.items() if result and result.get("variant_results")}
    if not present:
        return {}
    missing = [uuid for uuid in family.metric_uuids if uuid not in present]
    test_variants = max(len(result["variant_results"]) for result in present.values())
    corrected = experiment_wide_correction(
        [result["variant_results"] for result in present.values()],
        family.method,
        alpha=family.alpha,
        untested=len(missing) * test_variants,
    )
    tests = sum(
        variant.get("method") == "frequentist" and variant.get("p_value") is not None
        for result in present.values()
        for variant in result["variant_results"]
    )
    block = {
        "method": family.method,
        "tests": tests + len(missing) * test_variants,
        "metric_uuids": family.metric_uuids,
        "missing_metric_uuids": missing,
    }
    return {
        uuid: {**result, "variant_results": variants, "experiment_wide_correction": block}
        for (uuid, result), variants in zip(present.items(), corrected, strict=True)
    }


def stored_results_by_day(
    experiment: Experiment, family: CorrectionFamily, *, days: Iterable[str] | None = None
) -> dict[str, dict[str, dict]]:
    """Day → {metric uuid: its latest completed stored result of that day} for the family's current
    fingerprints (optionally only `days`)."""
    rows = (
        ExperimentMetricResult.objects.filter(
            experiment=experiment,
            metric_uuid__in=family.metric_uuids,
            fingerprint__in=set(family.metric_fingerprints.values()),
            status=MetricResultStatus.COMPLETED,
        )
        .order_by("query_to")
        .values_list("metric_uuid", "fingerprint", "query_to", "result")
    )
    tz = experiment.project.tzinfo
    wanted = None if days is None else set(days)
    by_day: dict[str, dict[str, dict]] = {}
    for metric_uuid, fingerprint, query_to, result in rows:
        day = result_day(query_to, tz)
        if family.metric_fingerprints[metric_uuid] != fingerprint or (wanted is not None and day not in wanted):
            continue
        by_day.setdefault(day, {})[metric_uuid] = result
    return by_day


def corrected_series(
    experiment: Experiment, metric_uuid: str, timeseries: Mapping[str, dict | None]
) -> dict[str, dict | None]:
    """A metric's daily results (day → result or None) corrected together with the family's stored results of
    each day; unchanged when there is no family or the metric is not in it."""
    family = correction_family(experiment)
    if family is None or metric_uuid not in family.metric_fingerprints:
        return dict(timeseries)
    days = [day for day, result in timeseries.items() if result]
    stored = stored_results_by_day(experiment, family, days=days)
    corrected = dict(timeseries)
    for day in days:
        family_results = {**stored.get(day, {}), metric_uuid: timeseries[day]}
        corrected[day] = corrected_results(family, family_results)[metric_uuid]
    return corrected


def corrected_current(experiment: Experiment, metric: Mapping, result: dict, *, query_to: dt.datetime) -> dict:
    """A freshly computed result corrected together with the family's stored results of its day."""
    family = correction_family(experiment)
    if family is None or metric.get("uuid") not in family.metric_fingerprints:
        return result
    day = result_day(query_to, experiment.project.tzinfo)
    stored = stored_results_by_day(experiment, family, days=[day]).get(day, {})
    return corrected_results(family, {**stored, metric["uuid"]: result}).get(metric["uuid"], result)
