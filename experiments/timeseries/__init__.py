"""Daily timeseries of metric results: recalculation requests, the backfill a worker runs, reading the series, and
the scheduled daily results."""

from .backfill import timeseries_recalculation_run
from .daily import daily_results_compute, stuck_recalculation_ids, timeseries_experiment_ids
from .recalculation import recalculation_response, timeseries_recalculation_request
from .results import timeseries_results_get

__all__ = [
    "daily_results_compute",
    "recalculation_response",
    "stuck_recalculation_ids",
    "timeseries_experiment_ids",
    "timeseries_recalculation_request",
    "timeseries_recalculation_run",
    "timeseries_results_get",
]
