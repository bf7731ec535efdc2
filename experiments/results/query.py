"""The experiment kinds of PostHog's query endpoint: `ExperimentQuery` (a metric's current result) and
`ExperimentExposureQuery` (cumulative exposures per variant and day, with the sample ratio mismatch check)."""

from experiments import messages
from experiments.metrics import MULTIPLE_VARIANT_KEY, daily_exposures
from experiments.metrics.days import day_end
from experiments.models import Experiment
from experiments.results.correction import corrected_current
from experiments.results.current import current_query_to, experiment_days, flag_weights, metric_results_as_of
from experiments.stats import srm_p_value
from experiments.stats.health import SRM_MIN_EXPOSURES
from experiments_api.exceptions import DomainError

EXPERIMENT_QUERY = "ExperimentQuery"
EXPOSURE_QUERY = "ExperimentExposureQuery"
QUERY_KINDS = (EXPERIMENT_QUERY, EXPOSURE_QUERY)


def experiment_metric_query(*, experiment: Experiment, metric: dict) -> dict:
    """The metric's current result; a metric of the experiment-wide correction's family is corrected together with
    the family's stored results of today (experiments.results.correction)."""
    query_to = current_query_to(experiment)
    (result,) = metric_results_as_of(experiment=experiment, metric=metric, boundaries=[query_to])
    return {
        "kind": EXPERIMENT_QUERY,
        "metric": metric,
        **corrected_current(experiment, metric, result, query_to=query_to),
    }


def _exposure_srm(experiment: Experiment, totals: dict[str, int]) -> dict | None:
    """PostHog's block: expected counts from the flag's rollout over the variants with traffic, and the chi-square
    p-value; None below 100 exposures or with fewer than two such variants. `$multiple` units are left out."""
    weights = flag_weights(experiment, totals)
    observed = {key: totals.get(key, 0) for key in weights}
    total = sum(observed.values())
    if len(weights) < 2 or total < SRM_MIN_EXPOSURES:
        return None
    weight_sum = sum(weights.values())
    return {
        "expected": {key: weight / weight_sum * total for key, weight in weights.items()},
        "p_value": srm_p_value(list(observed.values()), list(weights.values())),
    }


def experiment_exposure_query(*, experiment: Experiment) -> dict:
    if experiment.start_date is None:
        raise DomainError(messages.EXPERIMENT_NOT_STARTED)
    tz = experiment.project.tzinfo
    days = experiment_days(experiment)
    per_day = daily_exposures(experiment=experiment, boundaries=[day_end(day, tz) for day in days])
    arms = list(per_day[0])
    if any(MULTIPLE_VARIANT_KEY in counts for counts in per_day):
        arms = [arm for arm in arms if arm != MULTIPLE_VARIANT_KEY] + [MULTIPLE_VARIANT_KEY]
    timeseries = []
    for arm in arms:
        running, cumulative = 0, []
        for counts in per_day:
            running += counts.get(arm, 0)
            cumulative.append(running)
        timeseries.append({"variant": arm, "days": [day.isoformat() for day in days], "exposure_counts": cumulative})
    totals = {series["variant"]: series["exposure_counts"][-1] for series in timeseries}
    return {
        "kind": EXPOSURE_QUERY,
        "timeseries": timeseries,
        "total_exposures": totals,
        "date_range": {
            "date_from": experiment.start_date.astimezone(tz).isoformat(),
            "date_to": experiment.end_date.astimezone(tz).isoformat() if experiment.end_date else None,
        },
        "sample_ratio_mismatch": _exposure_srm(experiment, totals),
    }


def experiment_query_run(*, experiment: Experiment, query: dict) -> dict:
    """`query` is validated: a known kind, and a metric object for an ExperimentQuery."""
    if query["kind"] == EXPERIMENT_QUERY:
        return experiment_metric_query(experiment=experiment, metric=query["metric"])
    return experiment_exposure_query(experiment=experiment)
