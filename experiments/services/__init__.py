"""Business rules of experiments: views and tasks call these functions, never the models directly."""

from experiments.services.actions import experiment_duplicate, exposure_cohort_create
from experiments.services.crud import experiment_create, experiment_update

__all__ = ["experiment_create", "experiment_duplicate", "experiment_update", "exposure_cohort_create"]
