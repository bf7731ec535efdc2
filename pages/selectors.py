"""What the results pages show, read through the experiments services and the stats package (no statistics of
their own): the projects a user belongs to, their experiments, and one experiment's metrics, daily series,
exposures and health."""

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from experiments.definitions.fingerprint import experiment_metric_fingerprint
from experiments.filters import ExperimentFilter
from experiments.metrics import MULTIPLE_VARIANT_KEY
from experiments.models import Experiment
from experiments.results.current import experiment_metrics
from experiments.results.query import experiment_exposure_query
from experiments.results.requests import active_metrics_recalculation
from experiments.results.timeseries import timeseries_results_get
from experiments.selectors import experiments_with_relations
from experiments.stats import StatsConfig, estimate_effect, statistic_for
from experiments.stats.health import MIN_EXPOSURES, SRM_MIN_EXPOSURES, SRM_P_VALUE_THRESHOLD
from experiments_api.exceptions import DomainError
from experiments_api.models import Project

from . import formatting, messages

# Units seen in several variants above this share of all exposed units point at a broken flag implementation.
MULTIPLE_VARIANT_WARNING_SHARE = 0.01
PROPORTION_METRIC_TYPES = frozenset({"funnel", "retention"})


def member_projects(*, user: AbstractBaseUser) -> QuerySet[Project]:
    return Project.objects.filter(memberships__user=user).select_related("organization").order_by("name", "pk")


def member_project_get(*, user: AbstractBaseUser, project_id: int) -> Project:
    """The project if `user` is a member; 404 otherwise, so other projects cannot be told from missing ones."""
    project = member_projects(user=user).filter(pk=project_id).first()
    if project is None:
        raise Http404
    return project


def project_experiments(*, project: Project) -> QuerySet[Experiment]:
    """The API list's default: live, not archived, newest first."""
    experiments = Experiment.objects.alive().filter(project=project)
    return experiments_with_relations(ExperimentFilter(data={}, queryset=experiments).qs)


def project_experiment_get(*, project: Project, experiment_id: int) -> Experiment:
    """A live experiment of the project (archived included, as the API's retrieve); 404 otherwise."""
    experiment = experiments_with_relations(
        Experiment.objects.alive().filter(project=project, pk=experiment_id)
    ).first()
    if experiment is None:
        raise Http404
    return experiment


@dataclass(frozen=True)
class VariantResult:
    """One variant of one metric as of one day. `delta` and `interval` are against the baseline, relative or
    absolute as the experiment's stats_config says; `chance_to_win` is oriented by the metric's goal."""

    key: str
    exposures: int
    value: float | None
    delta: float | None = None
    interval: tuple[float | None, float | None] | None = None  # an open end of a one-sided interval is None
    chance_to_win: float | None = None
    p_value: float | None = None
    significant: bool | None = None
    verdict: str = "none"  # win, loss, flat, insufficient; "none" for the baseline
    failures: tuple[str, ...] = ()

    @property
    def significance(self) -> str:
        return {
            "win": messages.SIGNIFICANT_WIN,
            "loss": messages.SIGNIFICANT_LOSS,
            "flat": messages.NOT_SIGNIFICANT,
            "insufficient": messages.NOT_ENOUGH_DATA,
        }.get(self.verdict, "")


@dataclass(frozen=True)
class DailyResult:
    day: str
    baseline: VariantResult
    variants: tuple[VariantResult, ...]


@dataclass
class MetricResults:
    uuid: str
    name: str
    role: str  # primary or secondary
    metric_type: str
    metric: dict
    fingerprint: str
    goal: str
    daily: list[DailyResult] = field(default_factory=list)
    error: str | None = None
    recalculating: bool = False

    @property
    def latest(self) -> DailyResult | None:
        return self.daily[-1] if self.daily else None

    @property
    def is_proportion(self) -> bool:
        return self.metric_type in PROPORTION_METRIC_TYPES

    @property
    def error_text(self) -> str:
        return messages.METRIC_FAILED.format(error=self.error) if self.error else ""


@dataclass
class ExperimentResults:
    experiment: Experiment
    method: str
    relative: bool
    interval_level: float
    metrics: list[MetricResults]
    exposures: dict | None
    srm_summary: str
    srm_mismatch: bool
    warnings: list[str]
    metrics_recalculation_id: str | None


def metric_title(metric: dict) -> str:
    """The metric's name, else what it measures: its event, or its funnel steps."""
    if metric.get("name"):
        return metric["name"]
    if metric.get("series"):
        return " → ".join(str(step.get("event") or step.get("name") or "?") for step in metric["series"])
    source = metric.get("source") or metric.get("numerator") or {}
    return str(source.get("event") or source.get("name") or metric.get("metric_type") or "metric")


def _value(row: dict, metric_type: str) -> float | None:
    """The variant's mean (conversion rate for funnels) from the statistics engine; None when undefined."""
    try:
        return float(statistic_for(row, metric_type).mean)
    except (ValueError, ZeroDivisionError):
        return None


def _verdict(*, failures: tuple, interval, significant: bool | None, better: bool) -> str:
    if failures or interval is None:
        return "insufficient"
    if not significant:
        return "flat"
    return "win" if better else "loss"


def _delta(interval: tuple | None, row: dict, baseline: dict, metric_type: str, relative: bool) -> float | None:
    """The effect estimate: the centre of the interval, about which both engines' intervals are symmetric; for a
    one-sided interval (its open end is null) the unadjusted estimate from the stored statistics."""
    if interval is None:
        return None
    if None not in interval:
        return (interval[0] + interval[1]) / 2
    treatment, control = statistic_for(row, metric_type), statistic_for(baseline, metric_type)
    return float(estimate_effect(treatment, control, relative=relative).estimate)


def _variant_result(
    row: dict, *, metric_type: str, goal: str, baseline: dict | None = None, relative: bool = True
) -> VariantResult:
    """`baseline` is the control's row for a test variant, None for the control itself."""
    failures = tuple(row.get("validation_failures") or ())
    common = {"key": row["key"], "exposures": row["number_of_samples"], "value": _value(row, metric_type)}
    if baseline is None:
        return VariantResult(**common, failures=failures)
    bounds = row.get("credible_interval") or row.get("confidence_interval")
    interval = tuple(None if bound is None else float(bound) for bound in bounds) if bounds else None
    delta = _delta(interval, row, baseline, metric_type, relative)
    decrease = goal == "decrease"
    chance_to_win = row.get("chance_to_win")
    if chance_to_win is not None and decrease:
        chance_to_win = 1 - chance_to_win
    better = delta is not None and (delta < 0 if decrease else delta > 0)
    return VariantResult(
        **common,
        delta=delta,
        interval=interval,
        chance_to_win=chance_to_win,
        # The experiment-wide correction's p-value when there is one: the one `significant` is decided by.
        p_value=row.get("p_value_adjusted", row.get("p_value")),
        significant=row.get("significant"),
        verdict=_verdict(failures=failures, interval=interval, significant=row.get("significant"), better=better),
        failures=failures,
    )


def _daily_results(series: dict, *, metric_type: str, goal: str, relative: bool) -> list[DailyResult]:
    daily = []
    for day, result in series["timeseries"].items():
        if not result or not isinstance(result.get("baseline"), dict):
            continue
        baseline = result["baseline"]
        daily.append(
            DailyResult(
                day=day,
                baseline=_variant_result(baseline, metric_type=metric_type, goal=goal),
                variants=tuple(
                    _variant_result(row, metric_type=metric_type, goal=goal, baseline=baseline, relative=relative)
                    for row in result.get("variant_results") or ()
                ),
            )
        )
    return daily


def _latest_error(series: dict, daily: list[DailyResult]) -> str | None:
    """The error of the latest failed day when no later day succeeded."""
    errors = series.get("errors") or {}
    if not errors:
        return None
    last_failed = max(errors)
    if daily and daily[-1].day > last_failed:
        return None
    return errors[last_failed]


def _metric_results(
    experiment: Experiment, metric: dict, *, role: str, name: str | None, relative: bool
) -> MetricResults:
    metric_type = metric.get("metric_type") or "mean"
    goal = metric.get("goal") or "increase"
    fingerprint = experiment_metric_fingerprint(experiment, metric)
    results = MetricResults(
        uuid=metric["uuid"],
        name=metric.get("name") or name or metric_title(metric),
        role=role,
        metric_type=metric_type,
        metric=metric,
        fingerprint=fingerprint,
        goal=goal,
    )
    if experiment.start_date is None:
        return results
    series = timeseries_results_get(experiment=experiment, metric_uuid=metric["uuid"], fingerprint=fingerprint)
    results.daily = _daily_results(series, metric_type=metric_type, goal=goal, relative=relative)
    results.error = _latest_error(series, results.daily)
    results.recalculating = series["recalculation_status"] is not None
    return results


def _saved_metrics(experiment: Experiment) -> tuple[dict[str, str], set[str]]:
    """The linked saved metrics' names by query uuid, and the uuids of those linked as secondary."""
    names, secondary = {}, set()
    for link in experiment.saved_metric_links.all():
        query = link.saved_metric.query
        if not isinstance(query, dict) or not query.get("uuid"):
            continue
        names[query["uuid"]] = link.saved_metric.name
        if (link.metadata or {}).get("type") == "secondary":
            secondary.add(query["uuid"])
    return names, secondary


@dataclass(frozen=True)
class ExposureHealth:
    exposures: dict | None
    srm_summary: str
    srm_mismatch: bool
    warnings: list[str]


def _exposure_health(experiment: Experiment) -> ExposureHealth:
    """The exposure query's cumulative counts per variant and day, its sample-ratio check and health warnings."""
    if experiment.start_date is None:
        return ExposureHealth(None, "", False, [])
    try:
        exposures = experiment_exposure_query(experiment=experiment)
    except DomainError as refused:
        return ExposureHealth(None, "", False, [messages.WARNING_EXPOSURES_UNAVAILABLE.format(error=refused.message)])
    warnings = []
    srm = exposures["sample_ratio_mismatch"]
    mismatch = bool(srm) and srm["p_value"] < SRM_P_VALUE_THRESHOLD
    if srm is None:
        srm_summary = messages.SRM_NOT_ENOUGH_DATA.format(minimum=SRM_MIN_EXPOSURES)
    else:
        p_value = formatting.p_value_text(srm["p_value"])
        srm_summary = (messages.SRM_MISMATCH if mismatch else messages.SRM_HEALTHY).format(p_value=p_value)
    if mismatch:
        warnings.append(messages.WARNING_SAMPLE_RATIO_MISMATCH.format(p_value=formatting.p_value_text(srm["p_value"])))
    totals = exposures["total_exposures"]
    variant_keys = [variant["key"] for variant in experiment.feature_flag.variants]
    thin = [key for key in variant_keys if totals.get(key, 0) < MIN_EXPOSURES]
    if thin:
        warnings.append(
            messages.WARNING_NOT_ENOUGH_EXPOSURES.format(
                variants=", ".join(thin), verb="has" if len(thin) == 1 else "have", minimum=MIN_EXPOSURES
            )
        )
    total = sum(totals.values())
    multiple = totals.get(MULTIPLE_VARIANT_KEY, 0)
    if total and multiple / total > MULTIPLE_VARIANT_WARNING_SHARE:
        warnings.append(messages.WARNING_MULTIPLE_VARIANTS.format(share=f"{multiple / total:.1%}"))
    return ExposureHealth(exposures, srm_summary, mismatch, warnings)


def experiment_results(*, experiment: Experiment) -> ExperimentResults:
    """Every metric's stored daily results (primary first), the exposures and the health warnings."""
    config = StatsConfig.from_dict(experiment.stats_config)
    saved_names, saved_secondary = _saved_metrics(experiment)
    secondary = saved_secondary | {
        metric.get("uuid") for metric in experiment.metrics_secondary or [] if isinstance(metric, dict)
    }
    metrics = [
        _metric_results(
            experiment,
            metric,
            role="secondary" if metric["uuid"] in secondary else "primary",
            name=saved_names.get(metric["uuid"]),
            relative=config.relative,
        )
        for metric in experiment_metrics(experiment)
    ]
    metrics.sort(key=lambda metric: metric.role != "primary")
    health = _exposure_health(experiment)
    batch = active_metrics_recalculation(experiment) if experiment.start_date else None
    return ExperimentResults(
        experiment=experiment,
        method=config.method,
        relative=config.relative,
        interval_level=config.ci_level if config.method == "bayesian" else 1 - config.alpha,
        metrics=metrics,
        exposures=health.exposures,
        srm_summary=health.srm_summary,
        srm_mismatch=health.srm_mismatch,
        warnings=health.warnings,
        metrics_recalculation_id=str(batch.pk) if batch else None,
    )


def experiment_days_run(experiment: Experiment) -> int | None:
    """Whole days since launch (through the end date once stopped)."""
    if experiment.start_date is None:
        return None
    last = experiment.end_date or timezone.now()
    return max((last - experiment.start_date).days, 0)
