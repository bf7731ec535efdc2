"""Metric statistics of a bandit, whose flag weights change (analysis.md §7): periods start at each applied reweight
(read from the activity log), each unit belongs to the period of its first exposure, every metric is aggregated per
period and the periods are weighted by their share of units (`stats.bandits.period_weighted_row`).

Breakdown segments are weighted the same way within each segment (w_p = N_p,s/N_s, the segment's own units per
period), every period keeping the same segments, so each segment stays an A/B test free of the traffic drift.
"""

import datetime as dt
from dataclasses import dataclass

from experiments import messages
from experiments.definitions.bandit import QUANTILE_METRIC_TYPE
from experiments.metrics import DailyStatistics, SegmentStatistics, period_variant_statistics
from experiments.models import Experiment
from experiments.stats.bandits import period_weighted_row
from experiments_api.exceptions import DomainError

BANDIT_REWEIGHT_ACTIVITY = "bandit_reweight"
# The activity entry's change holding the reweight's inputs and outcome.
BANDIT_EVENT_FIELD = "bandit"


@dataclass(frozen=True)
class BanditPeriod:
    start: dt.datetime
    # The flag's rollout percentage per variant key during the period.
    percentages: dict[str, float]


def flag_percentages_by_key(experiment: Experiment) -> dict[str, float]:
    return {
        variant["key"]: float(variant.get("rollout_percentage") or 0) for variant in experiment.feature_flag.variants
    }


def bandit_events(experiment: Experiment) -> list[dict]:
    """The reweight records of the current launch (a reset and relaunch starts afresh), oldest first."""
    entries = experiment.activity.filter(activity=BANDIT_REWEIGHT_ACTIVITY, created_at__gte=experiment.start_date)
    return [
        change["after"]
        for entry in entries.order_by("created_at", "id")
        for change in entry.changes
        if change.get("field") == BANDIT_EVENT_FIELD
    ]


def bandit_periods(experiment: Experiment) -> list[BanditPeriod]:
    """The launch's first period at the weights before the first applied reweight, then one per applied reweight."""
    applied = [event for event in bandit_events(experiment) if event["weights_were_updated"]]
    first = (
        {key: 100 * weight for key, weight in applied[0]["current_weights"].items()}
        if applied
        else flag_percentages_by_key(experiment)
    )
    later = [
        BanditPeriod(
            dt.datetime.fromisoformat(event["date"]),
            {key: float(value) for key, value in event["applied_percentages"].items()},
        )
        for event in applied
    ]
    return [BanditPeriod(experiment.start_date, first), *later]


@dataclass(frozen=True)
class BanditStatistics:
    statistics: DailyStatistics
    # Per boundary, the units each variant should have had: Σ_p N_p · percentage_{v,p} (for the SRM check).
    expected_weights: list[dict[str, float]]


def _weighted_rows(per_period: list[list[dict]], units: list[float]) -> list[dict]:
    """One arm's rows of each period combined, for every arm (the rows of a period in the same variant order)."""
    keys = [row["key"] for row in per_period[0]]
    return [
        {"key": key, **period_weighted_row([rows[position] for rows in per_period], units)}
        for position, key in enumerate(keys)
    ]


def _weighted_segments(per_period: list[DailyStatistics], days: int) -> list[SegmentStatistics]:
    """Each segment's period-weighted rows per day; a period without the segment has no units in it."""
    segments = []
    for segment in per_period[0].segments:
        parts = [
            next(s for s in statistics.segments if s.breakdown_value == segment.breakdown_value)
            for statistics in per_period
        ]
        variants, exposures = [], []
        for day in range(days):
            units = [sum(part.exposures[day].values()) for part in parts]
            variants.append(_weighted_rows([part.variants[day] for part in parts], units))
            exposures.append({key: sum(part.exposures[day][key] for part in parts) for key in parts[0].exposures[day]})
        segments.append(SegmentStatistics(segment.breakdown_value, variants, exposures))
    return segments


def bandit_daily_statistics(*, experiment: Experiment, metric: dict, boundaries: list[dt.datetime]) -> BanditStatistics:
    """The metric's period-weighted per-variant rows as of each boundary, with breakdowns per segment too (one scan
    per period). A quantile metric (saved before it became one, say) is refused: quantiles are not sums."""
    if metric.get("metric_type") == QUANTILE_METRIC_TYPE:
        raise DomainError(messages.BANDIT_QUANTILE_METRIC, attr="metrics")
    periods = [period for period in bandit_periods(experiment) if period.start < boundaries[-1]]
    windows = [
        (period.start, periods[index + 1].start if index + 1 < len(periods) else boundaries[-1])
        for index, period in enumerate(periods)
    ]
    per_period = period_variant_statistics(experiment=experiment, metric=metric, boundaries=boundaries, periods=windows)
    variants, exposures, expected = [], [], []
    for day in range(len(boundaries)):
        units = [sum(statistics.exposures[day].values()) for statistics in per_period]
        rows = _weighted_rows([statistics.variants[day] for statistics in per_period], units)
        keys = [row["key"] for row in rows]
        variants.append(rows)
        exposures.append({key: sum(statistics.exposures[day][key] for statistics in per_period) for key in keys})
        expected.append(
            {
                key: sum(count * period.percentages.get(key, 0) for count, period in zip(units, periods, strict=True))
                for key in keys
            }
        )
    statistics = DailyStatistics(
        spec=per_period[0].spec,
        variants=variants,
        exposures=exposures,
        segments=_weighted_segments(per_period, len(boundaries)),
    )
    return BanditStatistics(statistics, expected)
