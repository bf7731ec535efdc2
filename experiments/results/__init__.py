"""Results of experiments: the current result, recalculation requests, the backfill and daily job, reading the
stored timeseries, and the /query/ runners. Tasks call these; they never import tasks."""
