"""A pure-Python computation of experiment metrics, independent of the SQL engine, for tests to compare against.

It recomputes everything from raw events for one `query_to` at a time, the way PostHog runs one query per day,
so it checks both the aggregation and the single-scan daily accumulation of experiments/metrics.
"""

import dataclasses
import datetime as dt
import math
import random
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400}


@dataclass(frozen=True)
class RawEvent:
    event: str
    distinct_id: str
    timestamp: dt.datetime
    properties: dict = field(default_factory=dict)
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class Setup:
    flag_key: str
    variants: tuple[str, ...]
    start: dt.datetime
    end: dt.datetime | None
    tz: ZoneInfo
    handling: str = "exclude"
    test_account_filters: tuple = ()
    exposure_event: str = "$feature_flag_called"
    exposure_properties: tuple = ()
    cuped_days: int | None = None
    # distinct id → the person it belongs to (by a merge); ids not listed are their own person.
    persons: dict = field(default_factory=dict)
    # person → its current properties; cohort id → its member persons.
    person_properties: dict = field(default_factory=dict)
    cohorts: dict = field(default_factory=dict)
    # Breakdowns ({property, type}) and, when set, the one segment (tuple of values) whose units are analysed.
    breakdowns: tuple = ()
    segment: tuple | None = None

    def unit_of(self, distinct_id: str) -> str:
        return self.persons.get(distinct_id, distinct_id)


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def property_matches(properties: dict, property_filter: dict) -> bool:
    operator = property_filter.get("operator", "exact")
    value = _text(properties.get(property_filter["key"]))
    wanted = property_filter.get("value")
    wanted_list = [_text(item) for item in wanted] if isinstance(wanted, list) else [_text(wanted)]
    if operator == "exact":
        return value in wanted_list
    if operator == "is_not":
        return value not in wanted_list
    if operator == "icontains":
        return value is not None and wanted_list[0].lower() in value.lower()
    if operator == "not_icontains":
        return value is None or wanted_list[0].lower() not in value.lower()
    if operator == "regex":
        return value is not None and re.search(wanted_list[0], value) is not None
    if operator == "not_regex":
        return value is None or re.search(wanted_list[0], value) is None
    if operator in ("gt", "gte", "lt", "lte"):
        number = _number(properties.get(property_filter["key"]))
        if number is None:
            return False
        limit = float(wanted)
        return {"gt": number > limit, "gte": number >= limit, "lt": number < limit, "lte": number <= limit}[operator]
    if operator == "is_set":
        return value is not None
    if operator == "is_not_set":
        return value is None
    raise AssertionError(operator)


def filter_matches(event: RawEvent, property_filter: dict, setup: "Setup") -> bool:
    """An event, person (current properties of the event's person) or cohort (membership) filter."""
    unit = setup.unit_of(event.distinct_id)
    if property_filter.get("type") == "cohort":
        member = unit in setup.cohorts.get(int(property_filter["value"]), set())
        return member != (property_filter.get("operator") == "not_in")
    if property_filter.get("type") == "person":
        return property_matches(setup.person_properties.get(unit, {}), property_filter)
    return property_matches(event.properties, property_filter)


def matches(event: RawEvent, source: dict, setup: "Setup") -> bool:
    if source.get("event") is not None and event.event != source["event"]:
        return False
    return all(filter_matches(event, item, setup) for item in source.get("properties") or [])


def exposures(events: list[RawEvent], setup: Setup, query_to: dt.datetime) -> dict[str, tuple[str, dt.datetime]]:
    """unit → (variant, first exposure) as of `query_to`."""
    upper = min(setup.end, query_to) if setup.end else query_to
    variant_key = (
        "$feature_flag_response" if setup.exposure_event == "$feature_flag_called" else f"$feature/{setup.flag_key}"
    )
    seen = defaultdict(list)
    for event in events:
        if event.event != setup.exposure_event or not setup.start <= event.timestamp < upper:
            continue
        if setup.exposure_event == "$feature_flag_called" and event.properties.get("$feature_flag") != setup.flag_key:
            continue
        if not all(filter_matches(event, item, setup) for item in setup.exposure_properties):
            continue
        if not all(filter_matches(event, item, setup) for item in setup.test_account_filters):
            continue
        variant = event.properties.get(variant_key)
        if variant in setup.variants:
            seen[setup.unit_of(event.distinct_id)].append((event.timestamp, variant, event.uuid, event))
    result = {}
    for unit, pairs in seen.items():
        pairs.sort(key=lambda pair: pair[:3])
        if setup.handling == "exclude" and len({pair[1] for pair in pairs}) > 1:
            continue
        if setup.segment is not None and segment_of(pairs[0][3], setup) != setup.segment:
            continue
        result[unit] = (pairs[0][1], pairs[0][0])
    return result


BREAKDOWN_NULL = "$$_posthog_breakdown_null_$$"
BREAKDOWN_OTHER = "$$_posthog_breakdown_other_$$"
MAX_SEGMENTS = 20


def segment_of(first_exposure: RawEvent, setup: Setup) -> tuple[str, ...]:
    """The unit's breakdown values: from its first exposure event, or its person's current properties."""
    values = []
    for breakdown in setup.breakdowns:
        if breakdown.get("type") == "person":
            properties = setup.person_properties.get(setup.unit_of(first_exposure.distinct_id), {})
        else:
            properties = first_exposure.properties
        value = _text(properties.get(breakdown["property"]))
        values.append(BREAKDOWN_NULL if value is None else value)
    return tuple(values)


def _segment_units(events, setup: Setup, boundaries: list[dt.datetime]) -> dict[tuple, int]:
    """Units per segment as of the last boundary (every variant), for the segments with units at any boundary,
    found by analysing each candidate segment alone."""
    counts = {}
    for segment in {segment_of(event, setup) for event in events}:
        per_boundary = [
            len(exposures(events, dataclasses.replace(setup, segment=segment), query_to)) for query_to in boundaries
        ]
        if any(per_boundary):
            counts[segment] = per_boundary[-1]
    return counts


def _sort_key(segment: tuple) -> tuple:
    return tuple((value == BREAKDOWN_OTHER, value) for value in segment)


def reference_breakdowns(
    events, setup: Setup, metric: dict, boundaries: list[dt.datetime]
) -> list[dict[tuple, dict[str, dict]]]:
    """Per boundary, {segment: {variant: sums}}: the top MAX_SEGMENTS segments by units as of the last boundary
    (ties by value; never one without units then), the others summed into the other segment."""
    units = _segment_units(events, setup, boundaries)
    ranked = sorted(units, key=lambda segment: (-units[segment], _sort_key(segment)))
    kept = {segment for segment in ranked[:MAX_SEGMENTS] if units[segment] > 0}
    return [_grouped(events, setup, metric, query_to, ranked, kept) for query_to in boundaries]


def _grouped(events, setup: Setup, metric: dict, query_to: dt.datetime, ranked: list, kept: set) -> dict:
    result = {}
    for segment in ranked:
        target = segment if segment in kept else (BREAKDOWN_OTHER,) * len(setup.breakdowns)
        sums = reference_statistics(events, dataclasses.replace(setup, segment=segment), metric, query_to)
        into = result.setdefault(target, {})
        for variant, fields in sums.items():
            totals = into.setdefault(variant, dict.fromkeys(fields, 0.0))
            for name, value in fields.items():
                totals[name] += value
    return result


def _window(metric: dict) -> dt.timedelta | None:
    if metric.get("conversion_window") is None:
        return None
    return dt.timedelta(seconds=metric["conversion_window"] * UNITS[metric.get("conversion_window_unit") or "day"])


def _unit_events(events, setup, unit, source, since, until):
    return [
        event
        for event in events
        if setup.unit_of(event.distinct_id) == unit
        and since <= event.timestamp < until
        and matches(event, source, setup)
        and all(filter_matches(event, item, setup) for item in setup.test_account_filters)
    ]


def source_value(matched: list[RawEvent], source: dict) -> float:
    math_type = source.get("math") or "total"
    if math_type == "total":
        return float(len(matched))
    if math_type == "dau":
        return 1.0 if matched else 0.0
    if math_type == "unique_session":
        return float(len({event.properties.get("$session_id") for event in matched} - {None, ""}))
    values = [_number(event.properties.get(source["math_property"])) or 0.0 for event in matched]
    if not values:
        return 0.0
    return {"sum": sum, "avg": lambda items: sum(items) / len(items), "min": min, "max": max}[math_type](values)


def _post_window(exposed_at, query_to, metric):
    window = _window(metric)
    return exposed_at, min(query_to, exposed_at + window) if window else query_to


def quantile_exact(values: list[float], level: float) -> float | None:
    """ClickHouse's quantileExact: the value at 0-based position floor(level·n) of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(math.floor(level * len(ordered)), len(ordered) - 1)]


def _aggregate(rows: dict[str, list[tuple]], variants, fields) -> dict[str, dict]:
    return {
        variant: {name: sum(row[index] for row in rows.get(variant, [])) for index, name in enumerate(fields)}
        for variant in variants
    }


def mean_statistics(events, setup: Setup, metric: dict, query_to: dt.datetime) -> dict[str, dict]:
    source = metric["source"]
    units = exposures(events, setup, query_to)
    values, covariates = {}, {}
    for unit, (_variant, exposed_at) in units.items():
        since, until = _post_window(exposed_at, query_to, metric)
        values[unit] = source_value(_unit_events(events, setup, unit, source, since, until), source)
        if setup.cuped_days:
            before = exposed_at - dt.timedelta(days=setup.cuped_days)
            covariates[unit] = source_value(_unit_events(events, setup, unit, source, before, exposed_at), source)
    lower, upper = metric.get("lower_bound_percentile"), metric.get("upper_bound_percentile")
    all_values = list(values.values())
    low = quantile_exact(all_values, lower) if lower is not None else None
    upper_values = [value for value in all_values if value != 0] if metric.get("ignore_zeros") else all_values
    high = quantile_exact(upper_values, upper) if upper is not None else None
    rows = defaultdict(list)
    for unit, (variant, _) in units.items():
        value = values[unit]
        value = max(value, low) if low is not None else value
        value = min(value, high) if high is not None else value
        covariate = covariates.get(unit, 0.0)
        rows[variant].append((1, value, value * value, covariate, covariate * covariate, value * covariate))
    fields = ["number_of_samples", "sum", "sum_squares", "covariate_sum", "covariate_sum_squares", "sum_products"]
    return _aggregate(rows, setup.variants, fields)


def funnel_statistics(events, setup: Setup, metric: dict, query_to: dt.datetime) -> dict[str, dict]:
    steps = metric["series"]
    ordered = (metric.get("funnel_order_type") or "ordered") == "ordered"
    units = exposures(events, setup, query_to)
    rows = defaultdict(list)
    for unit, (variant, exposed_at) in units.items():
        since, until = _post_window(exposed_at, query_to, metric)
        if ordered:
            reached, previous = 0, None
            for step in steps:
                times = [
                    event.timestamp
                    for event in _unit_events(events, setup, unit, step, since, until)
                    if previous is None or event.timestamp > previous
                ]
                if not times:
                    break
                previous, reached = min(times), reached + 1
        else:
            reached = sum(1 for step in steps if _unit_events(events, setup, unit, step, since, until))
        converted = 1 if reached == len(steps) else 0
        covariate = 0.0
        if setup.cuped_days and ordered:
            before = exposed_at - dt.timedelta(days=setup.cuped_days)
            covariate = 1.0 if _unit_events(events, setup, unit, steps[-1], before, exposed_at) else 0.0
        rows[variant].append(
            (1, converted, converted, covariate, covariate, converted * covariate)
            + tuple(1 if reached >= index else 0 for index in range(1, len(steps) + 1))
        )
    fields = ["number_of_samples", "sum", "sum_squares", "covariate_sum", "covariate_sum_squares", "sum_products"]
    fields += [f"step_{index}" for index in range(1, len(steps) + 1)]
    return _aggregate(rows, setup.variants, fields)


def ratio_statistics(events, setup: Setup, metric: dict, query_to: dt.datetime) -> dict[str, dict]:
    """With CUPED, each unit's numerator and denominator over the lookback before its exposure (Mp, Dp) and every
    sum ratio CUPED needs: Σ M·Mp, Σ M·Dp, Σ Mp·D, Σ D·Dp, Σ Mp·Dp and the pre-exposure sums and squares."""
    units = exposures(events, setup, query_to)
    rows = defaultdict(list)
    for unit, (variant, exposed_at) in units.items():
        since, until = _post_window(exposed_at, query_to, metric)
        numerator, denominator = (
            source_value(_unit_events(events, setup, unit, metric[side], since, until), metric[side])
            for side in ("numerator", "denominator")
        )
        pre_numerator = pre_denominator = 0.0
        if setup.cuped_days:
            before = exposed_at - dt.timedelta(days=setup.cuped_days)
            pre_numerator, pre_denominator = (
                source_value(_unit_events(events, setup, unit, metric[side], before, exposed_at), metric[side])
                for side in ("numerator", "denominator")
            )
        rows[variant].append(
            (
                1,
                numerator,
                numerator**2,
                denominator,
                denominator**2,
                numerator * denominator,
                pre_numerator,
                pre_numerator**2,
                pre_denominator,
                pre_denominator**2,
                numerator * pre_numerator,
                denominator * pre_denominator,
                pre_numerator * pre_denominator,
                numerator * pre_denominator,
                pre_numerator * denominator,
            )
        )
    fields = [
        "number_of_samples",
        "sum",
        "sum_squares",
        "denominator_sum",
        "denominator_sum_squares",
        "numerator_denominator_sum_product",
        "covariate_sum",
        "covariate_sum_squares",
        "covariate_denominator_sum",
        "covariate_denominator_sum_squares",
        "sum_products",
        "denominator_covariate_denominator_sum_product",
        "covariate_numerator_denominator_sum_product",
        "numerator_covariate_denominator_sum_product",
        "covariate_numerator_denominator_post_sum_product",
    ]
    return _aggregate(rows, setup.variants, fields)


def _retained(start: RawEvent, completion: RawEvent, metric: dict, tz: ZoneInfo) -> bool:
    unit = metric.get("retention_window_unit") or "day"
    low, high = metric.get("retention_window_start", 0), metric["retention_window_end"]
    if unit == "day":
        difference = (completion.timestamp.astimezone(tz).date() - start.timestamp.astimezone(tz).date()).days
        return low <= difference <= high
    if unit == "hour":
        hour = dt.timedelta(hours=1)
        difference = (completion.timestamp - dt.datetime.min.replace(tzinfo=dt.UTC)) // hour - (
            start.timestamp - dt.datetime.min.replace(tzinfo=dt.UTC)
        ) // hour
        return low <= difference <= high
    seconds = dt.timedelta(seconds=UNITS[unit])
    return start.timestamp + low * seconds <= completion.timestamp <= start.timestamp + high * seconds


def retention_statistics(events, setup: Setup, metric: dict, query_to: dt.datetime) -> dict[str, dict]:
    units = exposures(events, setup, query_to)
    window = _window(metric)
    rows = defaultdict(list)
    for unit, (variant, exposed_at) in units.items():
        until = min(query_to, exposed_at + window) if window else query_to
        starts = _unit_events(events, setup, unit, metric["start_event"], exposed_at, until)
        if not starts:
            continue
        pick = max if metric.get("start_handling") == "last_seen" else min
        start = pick(starts, key=lambda event: (event.timestamp, event.uuid))
        completions = _unit_events(events, setup, unit, metric["completion_event"], start.timestamp, query_to)
        retained = any(
            completion.uuid != start.uuid and _retained(start, completion, metric, setup.tz)
            for completion in completions
        )
        value = 1 if retained else 0
        rows[variant].append((1, value, value, 1, 1, value))
    fields = [
        "number_of_samples",
        "sum",
        "sum_squares",
        "denominator_sum",
        "denominator_sum_squares",
        "numerator_denominator_sum_product",
    ]
    return _aggregate(rows, setup.variants, fields)


QUANTILE_GRID = tuple(100 * 2**k for k in range(20))
Z_975 = 1.959963984540054


def _bound_levels(nu: float, nstar: int) -> tuple[float, float]:
    half_width = Z_975 * math.sqrt(nu * (1 - nu) / nstar)
    return max(1e-8, nu - half_width), min(1 - 1e-8, nu + half_width)


def _quantile_fields(used: list[float], nu: float) -> dict:
    """numpy's linear sample quantile (PostgreSQL's percentile_cont) at ν, and at the bound levels of the largest
    grid n* ≤ n whose bounds differ."""
    if not used:
        return {"quantile": 0.0, "quantile_lower": 0.0, "quantile_upper": 0.0, "quantile_nstar": None}
    estimate = float(numpy.quantile(used, nu))
    chosen, lower, upper = None, estimate, estimate
    for nstar in reversed(QUANTILE_GRID):
        if nstar > len(used):
            continue
        low, high = (float(numpy.quantile(used, level)) for level in _bound_levels(nu, nstar))
        if low != high:
            chosen, lower, upper = nstar, low, high
            break
    return {"quantile": estimate, "quantile_lower": lower, "quantile_upper": upper, "quantile_nstar": chosen}


def event_value(event: RawEvent, metric: dict) -> float | None:
    """An event-level quantile's value: the event's numeric math_property (None without one, or a zero left out)."""
    value = _number(event.properties.get(metric["source"]["math_property"]))
    return None if value == 0 and metric.get("ignore_zeros") else value


def _event_quantile_statistics(events, setup: Setup, metric: dict, query_to: dt.datetime) -> dict[str, dict]:
    """Event level: the quantile fields over every event value of the variant's units, and the clustering sums of
    S_i (the unit's values at or below the variant's q̂) and N_i (its values) over the units with values."""
    units = exposures(events, setup, query_to)
    values = defaultdict(dict)
    for unit, (variant, exposed_at) in units.items():
        since, until = _post_window(exposed_at, query_to, metric)
        matched = [
            event_value(event, metric) for event in _unit_events(events, setup, unit, metric["source"], since, until)
        ]
        values[variant][unit] = [value for value in matched if value is not None]
    result = {}
    for variant in setup.variants:
        by_unit = values.get(variant, {})
        used = [value for unit_values in by_unit.values() for value in unit_values]
        row = {"number_of_samples": len(by_unit), "quantile_n": len(used)} | _quantile_fields(used, metric["quantile"])
        clusters = [
            (sum(1 for value in unit_values if value <= row["quantile"]), len(unit_values))
            for unit_values in by_unit.values()
            if unit_values
        ]
        result[variant] = row | {
            "n_clusters": len(clusters),
            "sum": sum(below for below, _ in clusters),
            "sum_squares": sum(below * below for below, _ in clusters),
            "denominator_sum": sum(count for _, count in clusters),
            "denominator_sum_squares": sum(count * count for _, count in clusters),
            "numerator_denominator_sum_product": sum(below * count for below, count in clusters),
        }
    return result


def quantile_statistics(events, setup: Setup, metric: dict, query_to: dt.datetime) -> dict[str, dict]:
    """Unit-level quantile fields per variant over the units' values (event level: `_event_quantile_statistics`)."""
    if metric.get("quantile_type") == "event":
        return _event_quantile_statistics(events, setup, metric, query_to)
    source, nu = metric["source"], metric["quantile"]
    units = exposures(events, setup, query_to)
    values = defaultdict(list)
    for unit, (variant, exposed_at) in units.items():
        since, until = _post_window(exposed_at, query_to, metric)
        values[variant].append(source_value(_unit_events(events, setup, unit, source, since, until), source))
    result = {}
    for variant in setup.variants:
        all_values = values.get(variant, [])
        used = [value for value in all_values if value != 0] if metric.get("ignore_zeros") else all_values
        row = {"number_of_samples": len(all_values), "quantile_n": len(used)}
        result[variant] = row | _quantile_fields(used, nu)
    return result


STATISTICS = {
    "mean": mean_statistics,
    "quantile": quantile_statistics,
    "funnel": funnel_statistics,
    "ratio": ratio_statistics,
    "retention": retention_statistics,
}


def reference_statistics(events, setup: Setup, metric: dict, query_to: dt.datetime) -> dict[str, dict]:
    return STATISTICS[metric["metric_type"]](events, setup, metric, query_to)


def sample_events(seed: int, *, start: dt.datetime, flag_key: str, units: int = 120) -> list[RawEvent]:
    """Units exposed over five days (a few seen in both variants, some exposed twice), with page views and
    purchases before and after their exposure, some at the edges of local days, and a few test accounts."""
    rng = random.Random(seed)
    events = []
    for number in range(units):
        unit = f"unit-{number}"
        variant = "control" if number % 2 else "test"
        exposed_at = start + dt.timedelta(minutes=rng.randint(0, 5 * 24 * 60))
        flag = {"$feature_flag": flag_key, "$feature_flag_response": variant}
        if number % 15 == 0:
            flag["$host"] = "localhost"
        events.append(RawEvent("$feature_flag_called", unit, exposed_at, flag))
        if number % 4 == 0:
            events.append(
                RawEvent("$feature_flag_called", unit, exposed_at + dt.timedelta(hours=rng.randint(1, 30)), flag)
            )
        if number % 13 == 0:
            other = "test" if variant == "control" else "control"
            switch_at = exposed_at + dt.timedelta(hours=rng.randint(0, 60))
            events.append(RawEvent("$feature_flag_called", unit, switch_at, {**flag, "$feature_flag_response": other}))
        for _ in range(rng.randint(0, 7)):
            at = exposed_at + dt.timedelta(minutes=rng.randint(-3 * 24 * 60, 6 * 24 * 60))
            session = f"session-{rng.randint(0, 3)}"
            if rng.random() < 0.4:
                amount = rng.choice([rng.randint(1, 60), rng.randint(1, 60), 500, "12.5", "n/a"])
                properties = {"amount": amount, "$session_id": session, "plan": rng.choice(["free", "Pro", "pro"])}
                events.append(RawEvent("purchase", unit, at, properties))
            else:
                events.append(RawEvent("$pageview", unit, at, {"$session_id": session}))
    # Events before the start and a flag call for another flag never count.
    events.append(
        RawEvent(
            "$feature_flag_called",
            "unit-early",
            start - dt.timedelta(hours=1),
            {"$feature_flag": flag_key, "$feature_flag_response": "test"},
        )
    )
    events.append(
        RawEvent(
            "$feature_flag_called", "unit-other", start, {"$feature_flag": "other", "$feature_flag_response": "test"}
        )
    )
    return events


def sample_identified_events(
    seed: int, *, start: dt.datetime, flag_key: str, units: int = 120
) -> tuple[list[RawEvent], list[RawEvent], dict[str, str]]:
    """`sample_events` where every third unit logs in mid-experiment: its events before the login are under an
    anonymous id `anon-<n>`, the later ones under `unit-<n>`; some see the other variant after logging in (flags
    hash on the distinct id), so they count as `$multiple`. Returns (events, their $identify events, the person
    of each anonymous id)."""
    events, identifies, persons = [], [], {}
    for event in sample_events(seed, start=start, flag_key=flag_key, units=units):
        number = event.distinct_id.removeprefix("unit-")
        if not number.isdigit() or int(number) % 3:
            events.append(event)
            continue
        anonymous = f"anon-{number}"
        persons[anonymous] = event.distinct_id
        login_at = start + dt.timedelta(days=1 + int(number) % 4, minutes=int(number) * 7)
        if event.timestamp < login_at:
            event = dataclasses.replace(event, distinct_id=anonymous)
        events.append(event)
    for anonymous, identified in persons.items():
        number = int(identified.removeprefix("unit-"))
        login_at = start + dt.timedelta(days=1 + number % 4, minutes=number * 7)
        identifies.append(RawEvent("$identify", identified, login_at, {"$anon_distinct_id": anonymous}))
        if number % 9 == 0:
            # After the login the flag, hashed on the new id, answers the other variant.
            other = "test" if number % 2 else "control"
            flag = {"$feature_flag": flag_key, "$feature_flag_response": other}
            events.append(RawEvent("$feature_flag_called", identified, login_at + dt.timedelta(hours=1), flag))
    return events, identifies, persons


# Amounts a purchase may carry: ties, zeros, values that are no number (missing, null, text, boolean), numeric text.
AWKWARD_AMOUNTS = (10, 10, 10, 25, 0, "0", None, "n/a", True, " 7 ", "1e1", 2.5)
MISSING = object()


def sample_event_values(seed: int, *, start: dt.datetime, flag_key: str, units: int = 300):
    """Purchases whose `amount` makes event-level quantiles awkward: many ties, zeros, missing and non-numeric
    values, units with a single event, purchases before the exposure, one control and one test unit alone on the
    first day, and a unit that leaves the analysis (seen in both variants) after everyone else is exposed. Test units spend
    more. Returns (events, re-sent copies of some of them: same uuid, timestamp and properties)."""
    rng = random.Random(seed)
    events = []
    for number in range(units):
        unit, variant = f"buyer-{number}", ("control", "test")[number % 2]
        early = number < 2
        exposed_at = start + (
            dt.timedelta(hours=1) if early else dt.timedelta(days=1, minutes=rng.randint(0, 3 * 1440))
        )
        flag = {"$feature_flag": flag_key, "$feature_flag_response": variant}
        events.append(RawEvent("$feature_flag_called", unit, exposed_at, flag))
        purchases = 1 if early or number % 7 == 0 else rng.choice([0, 1, 2, 3, 5, 8])
        for index in range(purchases):
            at = exposed_at + dt.timedelta(minutes=1 + index * rng.randint(1, 900))
            if rng.random() < 0.5:
                amount = rng.choice(AWKWARD_AMOUNTS + (MISSING,))
            else:
                amount = round(rng.uniform(1, 80) * (1.3 if variant == "test" else 1.0), 2)
            properties = {"plan": rng.choice(["free", "pro"])}
            if amount is not MISSING:
                properties["amount"] = amount
            events.append(RawEvent("purchase", unit, at, properties))
        if number % 5 == 0:
            events.append(RawEvent("purchase", unit, exposed_at - dt.timedelta(hours=2), {"amount": 999}))
    leaver_at = start + dt.timedelta(days=1)
    control = {"$feature_flag": flag_key, "$feature_flag_response": "control"}
    events.extend(
        [
            RawEvent("$feature_flag_called", "leaver", leaver_at, control),
            RawEvent("purchase", "leaver", leaver_at + dt.timedelta(hours=1), {"amount": 40}),
            RawEvent("purchase", "leaver", leaver_at + dt.timedelta(hours=2), {"amount": 10}),
            RawEvent(
                "$feature_flag_called",
                "leaver",
                start + dt.timedelta(days=4, hours=20),
                {**control, "$feature_flag_response": "test"},
            ),
        ]
    )
    purchases = [event for event in events if event.event == "purchase"]
    return events, rng.sample(purchases, 25)
