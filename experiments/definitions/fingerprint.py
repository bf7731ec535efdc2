"""Metric fingerprints: a SHA-256 of everything that changes a metric's results (PostHog's newest algorithm).

Stored daily results and recalculation requests are matched by fingerprint, so a change to the metric or to a
setting that affects its numbers (start date, stats method, exposure criteria, ...) yields new rows.
"""

import datetime as dt
import hashlib
import json
from typing import Any

from experiments.stats.config import stats_method

IGNORED_METRIC_KEYS = ("uuid", "name", "kind", "fingerprint", "only_count_matured_users")


def _clean_metric(metric: dict) -> dict:
    """The metric without the keys that do not change its results; nested values are shared, never modified."""
    cleaned = dict(metric)
    for key in IGNORED_METRIC_KEYS:
        cleaned.pop(key, None)
    if "breakdownFilter" in cleaned:
        breakdown_filter = cleaned.pop("breakdownFilter")
        if isinstance(breakdown_filter, dict):
            if breakdown_filter.get("breakdowns"):
                cleaned["breakdownFilter"] = breakdown_filter
            else:
                rest = {key: value for key, value in breakdown_filter.items() if key != "breakdowns"}
                if rest:
                    cleaned["breakdownFilter"] = rest
    return cleaned


def _start_date_value(start_date: Any) -> Any:
    if isinstance(start_date, dt.datetime):
        if start_date.tzinfo is not None:
            start_date = start_date.astimezone(dt.UTC)
        return start_date.isoformat()
    return start_date


def compute_metric_fingerprint(
    metric: dict,
    *,
    start_date: Any,
    stats_config: dict | None,
    exposure_criteria: dict | None,
    only_count_matured_users: bool = False,
    excluded_variants: list[str] | None = None,
) -> str:
    payload: dict[str, Any] = {
        "metric": _clean_metric(metric),
        "start_date": _start_date_value(start_date),
        "stats_method": stats_method(stats_config),  # the default (bayesian) when unset, as in PostHog
    }
    if exposure_criteria:
        payload["exposure_criteria"] = exposure_criteria
    if only_count_matured_users:
        payload["only_count_matured_users"] = True
    if excluded_variants:
        payload["excluded_variants"] = sorted(set(excluded_variants))
    serialized = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(serialized.encode("utf-8")).hexdigest()


# The experiment's fields a metric's fingerprint depends on (besides the metric itself).
FINGERPRINT_SETTINGS = ("start_date", "stats_config", "exposure_criteria", "only_count_matured_users", "parameters")


def experiment_metric_fingerprint(experiment, metric: dict) -> str:
    """The fingerprint of `metric` under `experiment`'s current settings."""
    return metric_fingerprint(metric, **{name: getattr(experiment, name) for name in FINGERPRINT_SETTINGS})


def metric_fingerprint(
    metric: dict,
    *,
    start_date: Any,
    stats_config: dict | None,
    exposure_criteria: dict | None,
    only_count_matured_users: bool,
    parameters: dict | None,
) -> str:
    """The fingerprint of `metric` under an experiment's settings, given as the experiment's fields of those names
    (FINGERPRINT_SETTINGS), for readers holding the fields rather than an Experiment."""
    return compute_metric_fingerprint(
        metric,
        start_date=start_date,
        stats_config=stats_config,
        exposure_criteria=exposure_criteria,
        only_count_matured_users=only_count_matured_users,
        excluded_variants=(parameters or {}).get("excluded_variants"),
    )
