"""Experiment statistics on per-variant sufficient statistics: pure Python, NumPy and SciPy, no Django."""

from .bayesian import BayesianResult, bayesian_test
from .config import StatsConfig
from .cuped import CupedAdjustedMean, CupedStatistic, cuped_adjust
from .effects import EffectEstimate, estimate_effect
from .frequentist import FrequentistResult, frequentist_test
from .health import (
    BASELINE_MEAN_IS_ZERO,
    NOT_ENOUGH_EXPOSURES,
    NOT_ENOUGH_METRIC_DATA,
    srm_check,
    srm_p_value,
    validation_failures,
)
from .multiple_testing import adjust_p_values, apply_multiple_testing_correction
from .results import compute_metric_result, statistic_for
from .running_time import required_sample_size_per_variant, running_time_days
from .statistics import Proportion, Ratio, SampleMean, Statistic

__all__ = [
    "BASELINE_MEAN_IS_ZERO",
    "NOT_ENOUGH_EXPOSURES",
    "NOT_ENOUGH_METRIC_DATA",
    "BayesianResult",
    "CupedAdjustedMean",
    "CupedStatistic",
    "EffectEstimate",
    "FrequentistResult",
    "Proportion",
    "Ratio",
    "SampleMean",
    "Statistic",
    "StatsConfig",
    "adjust_p_values",
    "apply_multiple_testing_correction",
    "bayesian_test",
    "compute_metric_result",
    "cuped_adjust",
    "estimate_effect",
    "frequentist_test",
    "required_sample_size_per_variant",
    "running_time_days",
    "srm_check",
    "srm_p_value",
    "statistic_for",
    "validation_failures",
]
