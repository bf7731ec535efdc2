"""Breakdowns (segments) of a metric: each unit's segment is the tuple of its breakdown values, read from its first
exposure event (event properties) or its person (person properties), so every unit is in exactly one segment.

The exposures CTE carries the segment inside the variant key (`<variant>\\x1f<JSON array of values>`), so every
metric's SQL groups by (variant, segment) without knowing about breakdowns; `split_segments` takes the keys apart.
Missing values are their own segment (`BREAKDOWN_NULL`); the top `MAX_SEGMENTS` segments by units are kept and
the rest are summed into one `BREAKDOWN_OTHER` segment (every field of the per-variant rows is a sum).
"""

import json
from dataclasses import dataclass

from .dialect import Dialect
from .filters import person_alias
from .spec import Breakdown

BREAKDOWN_NULL = "$$_posthog_breakdown_null_$$"
BREAKDOWN_OTHER = "$$_posthog_breakdown_other_$$"
MAX_SEGMENTS = 20
# Between the variant key and the segment in the exposures' variant column; flag variant keys never contain it.
SEGMENT_SEPARATOR = "\x1f"


def segment_sql(dialect: Dialect, breakdowns: tuple[Breakdown, ...], event_alias: str) -> str:
    """The unit's segment as JSON text: one string per breakdown, `BREAKDOWN_NULL` when the value is missing."""
    values = []
    for breakdown in breakdowns:
        column = f"{person_alias(event_alias) if breakdown.type == 'person' else event_alias}.properties"
        values.append(
            f"COALESCE({dialect.text_property(column, breakdown.property)}, {dialect.params(BREAKDOWN_NULL)})"
        )
    return dialect.json_text_array(values)


@dataclass(frozen=True)
class Segments:
    """The segments kept, in the order they are reported, and per bucket {segment: {variant: sums}}."""

    values: list[tuple[str, ...]]
    per_bucket: list[dict[tuple[str, ...], dict[str, dict]]]


def _add(total: dict, sums: dict) -> None:
    for name, value in sums.items():
        total[name] = total.get(name, 0.0) + value


def _sort_key(segment: tuple[str, ...]) -> tuple:
    return tuple((value == BREAKDOWN_OTHER, value) for value in segment)


def _by_segment(sums_by_key: dict[str, dict]) -> dict[tuple[str, ...], dict[str, dict]]:
    segments: dict[tuple[str, ...], dict[str, dict]] = {}
    for key, sums in sums_by_key.items():
        variant, _, encoded = key.partition(SEGMENT_SEPARATOR)
        segments.setdefault(tuple(json.loads(encoded)), {})[variant] = sums
    return segments


def segment_units(per_bucket: list[dict[str, dict]]) -> dict[tuple[str, ...], float]:
    """Units per segment (every variant) at the last bucket: what decides which segments are kept."""
    last = _by_segment(per_bucket[-1]) if per_bucket else {}
    return {segment: sum(sums["exposures"] for sums in variants.values()) for segment, variants in last.items()}


def split_segments(
    per_bucket: list[dict[str, dict]], *, breakdown_count: int, units: dict[tuple[str, ...], float] | None = None
) -> tuple[list[dict], Segments]:
    """From per-bucket sums keyed by `<variant>\\x1f<segment>`: the sums per variant over all segments, and the
    segments (the top MAX_SEGMENTS by units at the last bucket, ties by value, the rest summed into the other
    segment). `units` (default: `segment_units(per_bucket)`) decides the segments kept, so that queries over parts
    of the units (a bandit's periods) keep the same ones."""
    by_segment: list[dict[tuple[str, ...], dict[str, dict]]] = []
    overall: list[dict[str, dict]] = []
    for sums_by_key in per_bucket:
        segments = _by_segment(sums_by_key)
        totals: dict[str, dict] = {}
        for variants in segments.values():
            for variant, sums in variants.items():
                _add(totals.setdefault(variant, {}), sums)
        by_segment.append(segments)
        overall.append(totals)
    if units is None:
        units = segment_units(per_bucket)
    # Segments whose units have all left the analysis by the last bucket are never kept, but their earlier days
    # still count in the other segment, so the segments always add up to the all-segments sums.
    ranked = sorted(units, key=lambda segment: (-units[segment], _sort_key(segment)))
    kept = {segment for segment in ranked[:MAX_SEGMENTS] if units[segment] > 0}
    rest = [segment for segment in ranked if segment not in kept]
    other = (BREAKDOWN_OTHER,) * breakdown_count
    grouped = []
    for segments in by_segment:
        bucket: dict[tuple[str, ...], dict[str, dict]] = {}
        for segment, variants in segments.items():
            target = segment if segment in kept else other
            for variant, sums in variants.items():
                _add(bucket.setdefault(target, {}).setdefault(variant, {}), sums)
        grouped.append(bucket)
    values = sorted(kept | ({other} if rest else set()), key=_sort_key)
    return overall, Segments(values=values, per_bucket=grouped)
