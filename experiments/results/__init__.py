"""Results of experiments: the current result, recalculation requests (one flow for timeseries and batches), the
leases recalculations run under, the backfill, batch and daily jobs, reading the stored timeseries, and the /query/
runners. Tasks call these; they never import tasks (they enqueue them by name, experiments_api/queue.py)."""
