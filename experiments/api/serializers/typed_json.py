"""OpenAPI types of the analysis options inside the experiment's JSON fields (metrics, `stats_config`, `parameters`).

The fields stay PostHog's open JSON objects (every other key passes through as sent), but the options this server
reads are declared with their types, ranges and choices, taken from the parsers that validate them
(`experiments.definitions`, `experiments.stats.config`), so the schema and the 400s agree. Where a parser treats
null as "not set", the schema allows null.
"""

from drf_spectacular.utils import extend_schema_field

from experiments.definitions.bandit import MAX_HOURS, MAX_SEED
from experiments.definitions.metric import BREAKDOWN_TYPES, GOALS, MAX_BREAKDOWNS, METRIC_TYPES, QUANTILE_TYPES
from experiments.stats.bayesian import DEFAULT_PRIOR_STDDEV, PRIOR_MAX_ABS_MEAN, PRIOR_STDDEV_RANGE
from experiments.stats.config import CUPED_LOOKBACK_DAYS_RANGE, DIFFERENCE_TYPES
from experiments.stats.frequentist import ALTERNATIVES
from experiments.stats.methods import STATS_METHODS
from experiments.stats.multiple_testing import MULTIPLE_TESTING_METHODS
from experiments_api.serializers import JSONObjectField, JSONObjectListField, StoredJSONObjectField


def _nullable(schema: dict) -> dict:
    return {"oneOf": [schema, {"type": "null"}]}


def _choice(choices, description: str) -> dict:
    return {"type": "string", "enum": list(choices), "description": description}


def _open_unit_interval(description: str) -> dict:
    return {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "description": description}


PRIOR_SCHEMA = _nullable(
    {
        "type": "object",
        "description": "A Gaussian prior on the relative lift (Bayesian method); rescaled to the control mean for "
        "an absolute effect. `proper: false` is a flat prior.",
        "properties": {
            "proper": {"type": "boolean", "default": True},
            "mean": {"type": "number", "minimum": -PRIOR_MAX_ABS_MEAN, "maximum": PRIOR_MAX_ABS_MEAN, "default": 0},
            "stddev": {
                "type": "number",
                "minimum": PRIOR_STDDEV_RANGE[0],
                "maximum": PRIOR_STDDEV_RANGE[1],
                "default": DEFAULT_PRIOR_STDDEV,
            },
        },
    }
)

BREAKDOWN_FILTER_SCHEMA = _nullable(
    {
        "type": "object",
        "description": "Per-segment results (`breakdown_results`) by up to three properties.",
        "properties": {
            "breakdowns": _nullable(
                {
                    "type": "array",
                    "maxItems": MAX_BREAKDOWNS,
                    "items": {
                        "type": "object",
                        "properties": {
                            "property": {"type": "string", "minLength": 1},
                            "type": _nullable(
                                _choice(
                                    BREAKDOWN_TYPES,
                                    "event (the first exposure's property, the default) or person; group and "
                                    "session parse but are refused by the results engine.",
                                )
                            ),
                        },
                        "required": ["property"],
                    },
                }
            ),
        },
    }
)

METRIC_SCHEMA = {
    "type": "object",
    "additionalProperties": True,
    "description": "An ExperimentMetric (PostHog's shape); the analysis options are typed, other keys pass through.",
    "properties": {
        "metric_type": _choice(METRIC_TYPES, "The kind of metric."),
        "goal": _nullable(_choice(GOALS, "Whether higher (increase) or lower (decrease) is better.")),
        "quantile": _open_unit_interval("Quantile metrics: the quantile, 0 < q < 1 (0.9 for P90)."),
        "quantile_type": _nullable(
            _choice(QUANTILE_TYPES, "Quantile metrics: over per-unit values (unit, the default) or every event.")
        ),
        "ignore_zeros": {"type": ["boolean", "null"]},
        "breakdownFilter": BREAKDOWN_FILTER_SCHEMA,
        "prior": {**PRIOR_SCHEMA, "description": "This metric's prior, replacing `stats_config.bayesian.prior`."},
    },
}

_MULTIPLE_TESTING_METHOD = _nullable(_choice(MULTIPLE_TESTING_METHODS, "holm (Holm–Bonferroni) or bh."))

STATS_CONFIG_SCHEMA = {
    "type": ["object", "null"],
    "additionalProperties": True,
    "properties": {
        "method": _nullable(_choice(STATS_METHODS, "The inference method (bayesian by default).")),
        "difference_type": _nullable(_choice(DIFFERENCE_TYPES, "relative (the default) or absolute effects.")),
        "baseline_variant_key": {"type": ["string", "null"]},
        "multiple_testing_correction": {
            **_MULTIPLE_TESTING_METHOD,
            "description": "Correct each metric's p-values across its test variants.",
        },
        "multiple_testing": _nullable(
            {
                "type": "object",
                "description": "Experiment-wide correction across primary (and optionally secondary) metrics × "
                "test variants.",
                "properties": {
                    "method": _MULTIPLE_TESTING_METHOD,
                    "include_secondary": {"type": "boolean", "default": False},
                },
            }
        ),
        "bayesian": _nullable(
            {
                "type": "object",
                "properties": {
                    "ci_level": _nullable(_open_unit_interval("The credible level (0.95 by default).")),
                    "prior": {**PRIOR_SCHEMA, "description": "The default prior of every metric."},
                },
            }
        ),
        "frequentist": _nullable(
            {
                "type": "object",
                "properties": {
                    "alpha": _nullable(_open_unit_interval("The significance level (0.05 by default).")),
                    "sequential": {"type": ["boolean", "null"]},
                    "sequential_tuning": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    "alternative": _nullable(
                        _choice(ALTERNATIVES, "two_sided (the default), or one-sided greater or less.")
                    ),
                },
            }
        ),
        "cuped": {
            "oneOf": [
                {"type": ["boolean", "null"]},
                {
                    "type": "object",
                    "properties": {
                        "enabled": {"type": ["boolean", "null"]},
                        "lookback_days": {
                            "type": ["integer", "null"],
                            "description": "Pre-exposure days, clamped to "
                            f"{CUPED_LOOKBACK_DAYS_RANGE[0]}–{CUPED_LOOKBACK_DAYS_RANGE[1]}.",
                        },
                    },
                },
            ]
        },
    },
}

BANDIT_SCHEMA = _nullable(
    {
        "type": "object",
        "additionalProperties": False,
        "description": "A bandit experiment's settings (`type: bandit`).",
        "properties": {
            "decision_metric_uuid": {"type": ["string", "null"], "description": "The first primary metric if null."},
            "top_two": {"type": "boolean", "default": False},
            "min_variation_weight": {
                "type": "number",
                "minimum": 0,
                "exclusiveMaximum": 1,
                "default": 0.01,
                "description": "The floor of every arm's weight; below 1/variants.",
            },
            "burn_in_hours": {"type": "number", "minimum": 0, "maximum": MAX_HOURS, "default": 24},
            "update_interval_hours": {"type": "number", "minimum": 1, "maximum": MAX_HOURS, "default": 24},
            "seed": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SEED - 1},
        },
    }
)

PARAMETERS_SCHEMA = {
    "type": "object",
    "additionalProperties": True,
    "properties": {"bandit": BANDIT_SCHEMA},
}


@extend_schema_field(METRIC_SCHEMA)
class MetricField(JSONObjectField):
    """One experiment metric."""


@extend_schema_field({"type": "array", "items": METRIC_SCHEMA})
class MetricListField(JSONObjectListField):
    """A list of experiment metrics."""


@extend_schema_field(STATS_CONFIG_SCHEMA)
class StatsConfigField(StoredJSONObjectField):
    """`stats_config`: requests send an object; rows stored without one answer null."""


@extend_schema_field(PARAMETERS_SCHEMA)
class ParametersField(JSONObjectField):
    """`parameters`, with the bandit settings typed."""
