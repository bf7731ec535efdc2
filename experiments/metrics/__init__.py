"""Per-variant sufficient statistics of experiment metrics, aggregated by the database in one scan of the events.

`daily_variant_statistics` answers for a list of `query_to` boundaries at once (one per day for a timeseries, or
one for a current result); `period_variant_statistics` the same over the units first exposed in each of a list of
periods (a bandit's), with the same breakdown segments in every period; `daily_exposures` counts first exposures
per variant and day.
"""

import collections
import dataclasses
import datetime as dt
from dataclasses import dataclass

from experiments.models import Experiment
from experiments.stats.health import COUNT_METRIC_TYPES
from experiments.stats.results import COVARIATE_FIELDS, RATIO_DENOMINATOR_COVARIATE_FIELDS, RATIO_FIELDS
from flags.evaluation import holdout_variant_key

from .breakdowns import segment_units, split_segments
from .days import midnights_between
from .exposure import parse_exposure
from .funnel import funnel_statistics
from .mean import mean_statistics
from .quantile import CLUSTER_FIELDS, QUANTILE_FIELDS, quantile_statistics
from .query import MULTIPLE_VARIANT_KEY, Query, QueryContext, add_exposures, run
from .ratio import ratio_statistics
from .retention import retention_statistics
from .spec import MetricSpec, parse_metric

STATISTICS = {
    "mean": mean_statistics,
    "quantile": quantile_statistics,
    "funnel": funnel_statistics,
    "ratio": ratio_statistics,
    "retention": retention_statistics,
}


def _context(
    experiment: Experiment,
    exposure,
    boundaries: list[dt.datetime],
    breakdowns=(),
    first_exposure_window=None,
    count_multiple=False,
) -> QueryContext:
    return QueryContext.build(
        project_id=experiment.project_id,
        exposure=exposure,
        start=experiment.start_date,
        end=experiment.end_date,
        boundaries=boundaries,
        calendar_boundaries=midnights_between(experiment.start_date, boundaries[-1], experiment.project.tzinfo),
        breakdowns=breakdowns,
        first_exposure_window=first_exposure_window,
        count_multiple=count_multiple,
    )


def _variant_row(key: str, sums: dict, spec: MetricSpec) -> dict:
    """One variant in the statistics engine's input shape; counts are integers."""
    if spec.metric_type == "quantile":
        row = {"key": key, "number_of_samples": round(sums["number_of_samples"])}
        row |= {field: sums[field] for field in QUANTILE_FIELDS}
        if "n_clusters" in sums:
            row |= {"n_clusters": round(sums["n_clusters"])} | {
                field: round(sums[field]) for field in CLUSTER_FIELDS if field != "n_clusters"
            }
        return row
    as_count = round if spec.metric_type in COUNT_METRIC_TYPES else float
    row = {
        "key": key,
        "number_of_samples": round(sums["number_of_samples"]),
        "sum": as_count(sums["sum"]),
        "sum_squares": as_count(sums["sum_squares"]),
    }
    if spec.metric_type in ("ratio", "retention"):
        row |= {field: as_count(sums[field]) for field in RATIO_FIELDS}
    if spec.metric_type == "funnel":
        row["step_counts"] = [round(sums[f"step_{index}"]) for index in range(1, len(spec.definition.steps) + 1)]
    if "covariate_sum" in sums:
        row |= {field: float(sums[field]) for field in COVARIATE_FIELDS}
    if "covariate_denominator_sum" in sums:
        row |= {field: float(sums[field]) for field in RATIO_DENOMINATOR_COVARIATE_FIELDS}
    return row


@dataclass(frozen=True)
class SegmentStatistics:
    """One breakdown segment: its values (in breakdowns order) and, per boundary, one row per variant and the
    segment's units in the analysis per variant."""

    breakdown_value: tuple[str, ...]
    variants: list[list[dict]]
    exposures: list[dict[str, int]] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class DailyStatistics:
    spec: MetricSpec
    # Per boundary, one row per variant in the statistics engine's input shape.
    variants: list[list[dict]]
    # Per boundary, the units in the analysis per variant (exposed, not excluded), with or without a value.
    exposures: list[dict[str, int]]
    # With breakdowns, the segments kept (experiments.metrics.breakdowns), in reporting order.
    segments: list[SegmentStatistics] = dataclasses.field(default_factory=list)
    # Per boundary, the units seen in several variants by then (daily_exposures' `$multiple`, summed up to that
    # bucket), when the metric's query counted them; None otherwise.
    multiple: list[int] | None = None


def _zero_sums(per_bucket: list[dict[str, dict]]) -> dict:
    """Sums for a (variant, segment) without units: zero for every output the query returned."""
    outputs = next((list(sums) for bucket in per_bucket for sums in bucket.values()), None)
    return dict.fromkeys(outputs, 0.0) if outputs else collections.defaultdict(float)


def _rows(sums_by_variant: dict[str, dict], variants: tuple[str, ...], spec: MetricSpec, zero: dict) -> list[dict]:
    """Rows for every variant, zero sums for one without units (so it fails validation)."""
    return [_variant_row(key, sums_by_variant.get(key, zero), spec) for key in variants]


def _bucket_sums(
    experiment: Experiment, metric: dict, boundaries: list[dt.datetime], first_exposure_window
) -> tuple[MetricSpec, tuple[str, ...], list[dict]]:
    """The parsed metric, its variants and the query's per-bucket sums (keyed by variant, or with breakdowns by
    `<variant>\\x1f<segment>`)."""
    spec = parse_metric(metric, stats_config=experiment.stats_config)
    exposure = parse_exposure(experiment)
    # daily_exposures reads the same exposures unless it leaves a holdout arm out or the query keeps a period's.
    count_multiple = experiment.holdout_id is None and first_exposure_window is None
    ctx = _context(experiment, exposure, boundaries, spec.breakdowns, first_exposure_window, count_multiple)
    return spec, exposure.variants, STATISTICS[spec.metric_type](ctx, spec)


def _exposure_counts(sums_by_variant: dict[str, dict], variants: tuple[str, ...]) -> dict[str, int]:
    return {key: round(sums_by_variant[key]["exposures"]) if key in sums_by_variant else 0 for key in variants}


def _daily_statistics(
    spec: MetricSpec, variants: tuple[str, ...], per_bucket: list[dict], units: dict | None = None
) -> DailyStatistics:
    """Rows per boundary; with breakdowns the segments kept by `units` (default: this query's own)."""
    multiple = None
    if per_bucket and MULTIPLE_VARIANT_KEY in per_bucket[0]:
        multiple = [round(sums.pop(MULTIPLE_VARIANT_KEY)["exposures"]) for sums in per_bucket]
    segments: list[SegmentStatistics] = []
    if spec.breakdowns:
        zero = _zero_sums(per_bucket)
        per_bucket, split = split_segments(per_bucket, breakdown_count=len(spec.breakdowns), units=units)
        per_bucket = [{key: bucket.get(key, zero) for key in variants} for bucket in per_bucket]
        segments = [
            SegmentStatistics(
                breakdown_value=value,
                variants=[_rows(bucket.get(value, {}), variants, spec, zero) for bucket in split.per_bucket],
                exposures=[_exposure_counts(bucket.get(value, {}), variants) for bucket in split.per_bucket],
            )
            for value in split.values
        ]
    return DailyStatistics(
        spec=spec,
        variants=[[_variant_row(key, sums[key], spec) for key in variants] for sums in per_bucket],
        exposures=[_exposure_counts(sums, variants) for sums in per_bucket],
        segments=segments,
        multiple=multiple,
    )


def daily_variant_statistics(
    *,
    experiment: Experiment,
    metric: dict,
    boundaries: list[dt.datetime],
    first_exposure_window: tuple[dt.datetime, dt.datetime] | None = None,
) -> DailyStatistics:
    """For each boundary (ascending), the metric's per-variant rows as of that instant (exclusive), and with
    breakdowns the same per segment; with `first_exposure_window` (since, until), only over the units first
    exposed in it.

    Raises DomainError for a metric or experiment setting the engine cannot compute.
    """
    return _daily_statistics(*_bucket_sums(experiment, metric, boundaries, first_exposure_window))


def period_variant_statistics(
    *,
    experiment: Experiment,
    metric: dict,
    boundaries: list[dt.datetime],
    periods: list[tuple[dt.datetime, dt.datetime]],
) -> list[DailyStatistics]:
    """`daily_variant_statistics` over the units first exposed in each period (one query each). With breakdowns
    every period keeps the same segments: the top ones by units over all periods at the last boundary."""
    queried = [_bucket_sums(experiment, metric, boundaries, period) for period in periods]
    units = None
    if queried and queried[0][0].breakdowns:
        units = collections.Counter()
        for _spec, _variants, per_bucket in queried:
            units.update(segment_units(per_bucket))
    return [
        _daily_statistics(spec, variants, per_bucket, dict(units) if units is not None else None)
        for spec, variants, per_bucket in queried
    ]


def daily_exposures(*, experiment: Experiment, boundaries: list[dt.datetime]) -> list[dict[str, int]]:
    """Per bucket, the units first exposed in it by variant; under `exclude`, units seen in several variants by the
    last boundary count as `$multiple`. The holdout arm is left out, as in PostHog's exposure chart."""
    exposure = parse_exposure(experiment)
    holdout = holdout_variant_key(experiment.holdout_id)
    exposure = dataclasses.replace(exposure, variants=tuple(key for key in exposure.variants if key != holdout))
    ctx = _context(experiment, exposure, boundaries)
    query = Query()
    add_exposures(query, ctx)
    never = ctx.params(ctx.bucket_count)
    multiple = ctx.params(MULTIPLE_VARIANT_KEY)
    rows = run(
        query,
        ctx,
        f"SELECT CASE WHEN exit_bucket < {never} THEN {multiple} ELSE variant END AS arm, exp_bucket, COUNT(*) "
        "FROM exposures GROUP BY 1, 2",
    )
    counts = [dict.fromkeys(exposure.variants, 0) for _ in boundaries]
    for arm, bucket, count in rows:
        counts[bucket][arm] = counts[bucket].get(arm, 0) + count
    return counts
