"""Error messages of the experiments API, shared by code and tests (PostHog's texts where clients may match them)."""

END_BEFORE_START = "End date must be after start date"
CANT_UPDATE_KEYS = "Can't update keys: {keys} on Experiment"
GLOBAL_FILTER_PROPERTIES = "Experiments do not support global filter properties"
CANT_UPDATE_VARIANTS = "Can't update feature_flag_variants on Experiment"
CANT_UPDATE_HOLDOUT = "Can't update holdout on running Experiment"
RESTORE_WITH_DELETED_FLAG = (
    "Cannot restore this experiment because its feature flag '{key}' is deleted. Restore the feature flag first."
)
LAUNCH_WITH_DELETED_FLAG = "Experiment cannot be launched because its feature flag has been deleted."

FLAG_NOT_ELIGIBLE = "Feature flag is not eligible for experiments."
FLAG_CONTROL_NOT_FIRST = "Feature flag must have control as the first variant."
NEW_FLAG_NAME = "Feature Flag for Experiment {name}"

TOO_MANY_VARIANTS = "Feature flag variants must be less than 21"
NO_CONTROL_VARIANT = "Feature flag variants must contain a control variant"
ONE_VARIANT = "Feature flag must have at least 2 variants (control and at least one test variant)"
VARIANTS_NOT_A_LIST = "Feature flag variants must be a list"
VARIANT_NOT_OBJECT = "Feature flag variant at index {index} must be an object"
VARIANT_WITHOUT_KEY = "Feature flag variant at index {index} must have a 'key' field"
VARIANT_WITHOUT_PERCENTAGE = (
    "Feature flag variant at index {index} must have a 'rollout_percentage' or 'split_percent' field"
)
PARAMETERS_NOT_OBJECT = "Parameters must be an object"
FILTERS_NOT_OBJECT = "filters must be an object"
SECONDARY_METRICS_NOT_LIST = "secondary_metrics must be a list"
SCHEDULING_CONFIG_NOT_OBJECT = "scheduling_config must be an object"
CUSTOM_EXPOSURE_FILTER_INVALID = (
    "custom_exposure_filter must be an object whose 'events' and 'actions' are lists of entity objects"
)
ROLLOUT_PERCENTAGE_INVALID = "rollout_percentage must be a number between 0 and 100"

FILTER_TEST_ACCOUNTS_NOT_BOOLEAN = "filterTestAccounts must be a boolean"
INVALID_EXPOSURE_CRITERIA = "Invalid exposure criteria"
INVALID_MULTIPLE_VARIANT_HANDLING = "multiple_variant_handling must be one of: exclude, first_seen"

STATS_CONFIG_NOT_OBJECT = "stats_config must be an object"
STATS_CONFIG_SECTION_NOT_OBJECT = "stats_config.{section} must be an object"
STATS_CONFIG_OPTION_INVALID = "stats_config.{option} must be a number between 0 and 1 (exclusive)"
STATS_CONFIG_NOT_BOOLEAN = "stats_config.{option} must be a boolean"
STATS_CONFIG_TUNING_INVALID = "stats_config.frequentist.sequential_tuning must be a positive number"
STATS_CONFIG_DIFFERENCE_TYPE_INVALID = "stats_config.difference_type must be one of: relative, absolute"
STATS_CONFIG_CORRECTION_INVALID = "stats_config.multiple_testing_correction must be one of: holm, bh"
STATS_CONFIG_LOOKBACK_INVALID = "stats_config.cuped.lookback_days must be an integer"
INVALID_STATS_METHOD = "Invalid stats method: '{method}'. Must be one of: bayesian, frequentist"
STATS_CONFIG_ALTERNATIVE_INVALID = "stats_config.frequentist.alternative must be one of: two_sided, greater, less"
STATS_CONFIG_ONE_SIDED_ALPHA = "stats_config.frequentist.alpha must be below 0.5 for a one-sided sequential test"
PRIOR_NOT_OBJECT = "{path} must be an object with proper, mean and stddev"
PRIOR_PROPER_NOT_BOOLEAN = "{path}.proper must be a boolean"
PRIOR_MEAN_INVALID = "{path}.mean must be a number from -1e100 to 1e100"
PRIOR_STDDEV_INVALID = "{path}.stddev must be a positive number from 1e-100 to 1e100"
MULTIPLE_TESTING_INVALID = (
    "stats_config.multiple_testing must be an object with method (holm, bh or null) and include_secondary"
)

# Metric definitions (experiments/definitions/metric.py): "Invalid metric[ at index N]: <problem>".
METRICS_NOT_A_LIST = "Metrics must be a list"
INVALID_METRIC_AT_INDEX = "Invalid metric at index {index}: {problem}"
INVALID_METRIC = "Invalid metric: {problem}"
UNSUPPORTED_METRIC = "Cannot compute this metric: {option} is not supported."
NOT_A_DICT = "must be a dict"
LEGACY_KIND = "legacy metric kind '{kind}' is no longer supported for new experiments. Use 'ExperimentMetric' instead."
WRONG_KIND = "metric kind must be 'ExperimentMetric'"
WRONG_METRIC_TYPE = "metric_type must be one of: mean, funnel, ratio, retention, quantile"
MISSING_KEY = "{metric_type} metrics require '{key}'"
FUNNEL_WITHOUT_STEPS = "funnel metrics require at least one step in 'series'"
UUID_INVALID = "uuid must be a string of at most 255 characters"
METRIC_UUID_INVALID = INVALID_METRIC.format(problem=UUID_INVALID)
NAME_INVALID = "name must be a string of at most 400 characters"
CONVERSION_WINDOW_INVALID = "conversion_window must be an integer of at least 1"
WINDOW_TOO_LONG = "{key} must be at most {years} years"
CONVERSION_WINDOW_UNIT_INVALID = "conversion_window_unit must be one of: second, minute, hour, day, week, month"
GOAL_INVALID = "goal must be one of: increase, decrease"
BREAKDOWN_FILTER_INVALID = "breakdownFilter must be an object whose 'breakdowns' is a list"
QUANTILE_INVALID = "quantile must be a number between 0 and 1 (exclusive), e.g. 0.9 for P90"
QUANTILE_TYPE_INVALID = "quantile_type must be 'unit' or 'event'"
EVENT_QUANTILE_NEEDS_VALUE = (
    "quantile_type 'event' takes the quantile of every event's value: source.math must be one of sum, avg, min, max, "
    "with a math_property"
)
TOO_MANY_BREAKDOWNS = "Maximum of {limit} breakdowns are supported for experiment metrics"
BREAKDOWN_NOT_OBJECT = "breakdownFilter.breakdowns[{index}] must be an object"
BREAKDOWN_PROPERTY_INVALID = "breakdownFilter.breakdowns[{index}].property must be a non-empty string"
BREAKDOWN_TYPE_INVALID = "breakdownFilter.breakdowns[{index}].type must be one of: {types}"
SOURCE_NOT_OBJECT = "{path} must be an object"
SOURCE_KIND_INVALID = "{path}.kind must be one of: {kinds}"
EVENT_INVALID = "{path}.event must be a string or null"
ACTION_ID_INVALID = "{path}.id must be an integer action id"
DATA_WAREHOUSE_FIELD_INVALID = "{path}.{field} must be a non-empty string"
MATH_INVALID = "{path}.math must be one of: total, sum, avg, min, max, unique_session, dau, unique_users"
MATH_PROPERTY_REQUIRED = "{path}.math_property must be a non-empty string when math is '{math}'"
PROPERTIES_NOT_LIST = "{path}.properties must be a list"
PROPERTY_FILTER_NOT_OBJECT = "each of {path} must be an object"
PROPERTY_FILTER_WITHOUT_KEY = "a property filter in {path} has no key"
PROPERTY_FILTER_WITHOUT_VALUE = "property filter '{key}' needs a value"
PROPERTY_FILTER_ONE_VALUE = "property filter '{key}' with operator '{operator}' needs one value"
PROPERTY_FILTER_OBJECT_VALUE = "property filter '{key}' has an object value"
SERIES_NOT_LIST = "series must be a list"
FUNNEL_ORDER_TYPE_INVALID = "funnel_order_type must be one of: ordered, unordered, strict"
PERCENTILE_INVALID = "{key} must be a number between 0 and 1"
PERCENTILES_OUT_OF_ORDER = "lower_bound_percentile must be less than upper_bound_percentile"
IGNORE_ZEROS_INVALID = "ignore_zeros must be a boolean"
RETENTION_WINDOW_INVALID = "{key} must be a non-negative integer"
RETENTION_WINDOW_OUT_OF_ORDER = "retention_window_end must not be before retention_window_start"
RETENTION_WINDOW_UNIT_INVALID = "retention_window_unit must be one of: second, minute, hour, day, week, month"
START_HANDLING_INVALID = "start_handling must be one of: first_seen, last_seen"

# Health findings (experiments/stats/health_checks.py).
HEALTH_SAMPLE_RATIO_MISMATCH = "Users are not split across variants as configured (sample ratio mismatch, p = {p:.2g})."
HEALTH_MULTIPLE_EXPOSURES = "{share:.1%} of exposed users saw more than one variant."
HEALTH_ZERO_EXPOSURES = "No users exposed since launch."
HEALTH_TOO_FEW_EXPOSURES = "Not enough exposures yet: at least {minimum} per variant are needed to read results."
HEALTH_NO_METRIC = "No metrics defined."
HEALTH_FLAG_OFF_WHILE_RUNNING = "The feature flag is off (or rolled out to 0%) while the experiment is running."
HEALTH_VARIANT_FORCED_WHILE_RUNNING = "Variant '{variant}' is served to everyone while the experiment is running."

SAVED_METRICS_NOT_LIST = "Saved metrics must be a list"
SAVED_METRIC_NOT_OBJECT = "Saved metric must be an object"
SAVED_METRIC_WITHOUT_ID = "Saved metric must have an id"
METADATA_NOT_OBJECT = "Metadata must be an object"
SAVED_METRIC_METADATA_WITHOUT_TYPE = "Metadata must have a type key"
SAVED_METRIC_DOES_NOT_EXIST = "Saved metric does not exist or does not belong to this project"

DUPLICATE_METRIC_UUID = "Duplicate metric UUID: '{uuid}'. Each metric must have a unique uuid."
ORDERING_NULL = (
    "{field} is null but {kind} metrics exist. This is likely a frontend bug - please refresh and try again."
)
ORDERING_MISSING = "{field} is missing UUIDs: {missing}. This is likely a frontend bug - please refresh and try again."
ORDERING_NOT_LIST = "{field} must be a list of metric UUID strings"

INVALID_ORDER_FIELD = "Invalid order field: '{order}'"
INVALID_STATUS_FILTER = "Invalid status: '{status}'. Must be one of: draft, running, paused, stopped, complete, all"
MUST_BE_INTEGER = "{name} must be an integer"
INVALID_LIMIT_OR_OFFSET = "Invalid limit or offset"

EXPOSURE_COHORT_NO_FLAG = "Experiment does not have a feature flag"
EXPOSURE_COHORT_NOT_STARTED = "Experiment does not have a start date"
EXPOSURE_COHORT_EXISTS = "Experiment already has an exposure cohort"
EXPOSURE_COHORT_INVALID_ACTION = "Invalid action ID"
EXPOSURE_COHORT_NAME = 'Users exposed to experiment "{name}"'

DELETE_NOT_ALLOWED = 'Hard delete is not allowed; PATCH {"deleted": true} to soft-delete instead.'

ALREADY_LAUNCHED = "Experiment has already been launched."
NOT_LAUNCHED = "Experiment has not been launched yet."
ALREADY_ENDED = "Experiment has already ended."
ALREADY_PAUSED = "Experiment is already paused."
NOT_PAUSED = "Experiment is not paused."
ALREADY_DRAFT = "Experiment is already a draft."
FLAG_NEEDS_CONTROL = "Feature flag must have a variant with key 'control'"
ALREADY_ARCHIVED = "Experiment is already archived."
NOT_ARCHIVED = "Experiment is not archived."
ARCHIVE_BEFORE_END = "Experiment must be ended before it can be archived."
UNKNOWN_VARIANT = "Variant '{variant}' does not exist on the feature flag. Valid variants: {valid}"
FLAG_DELETED = "Experiment's feature flag has been deleted."
TARGET_PROJECT_INVALID = (
    "Target project {project_id} does not exist in this organization or you are not a member of it."
)
TARGET_PROJECT_REQUIRED = "target_project_id is required"

MDE_NOT_POSITIVE = "minimum_detectable_effect must be greater than 0"
TARGET_MDE_NOT_POSITIVE = "target_mde must be greater than 0"
NOT_A_PROBABILITY = "{name} must be between 0 and 1 (exclusive)"
EXPOSURE_RATE_NOT_POSITIVE = "exposure_rate_per_day must be greater than 0"
BASELINE_REQUIRED = "Give baseline_value, or n, sum and sum_squares"
RAW_BASELINE_INCOMPLETE = "n, sum and sum_squares must be given together"
CONVERSION_RATE_OUT_OF_RANGE = "A funnel's baseline conversion rate must be between 0 and 1 (exclusive)"
MDE_TOO_LARGE_FOR_RATE = "The baseline conversion rate raised by minimum_detectable_effect must stay below 1"
VARIANCE_REQUIRED = "Mean and ratio metrics need a variance, or n, sum and sum_squares"
VARIANCE_NOT_POSITIVE = "The baseline variance must be greater than 0"
BASELINE_MEAN_ZERO = "The baseline mean must not be 0: a relative effect on a zero mean is zero"
SAMPLE_SIZE_OUT_OF_RANGE = (
    "No sample size can be computed for these inputs: minimum_detectable_effect is too small or too large "
    "for the baseline"
)
UNKNOWN_EVENTS = (
    "Event(s) {events} not found in this project. Capture them first, or send allow_unknown_events: true to use "
    "events that have not been seen yet."
)
METRICS_RECALCULATION_NOT_STARTED = "Cannot recalculate metrics for an experiment that hasn't started"
METRIC_REMOVED = "The metric was removed from the experiment."
METRIC_NOT_FOUND = "The experiment has no metric with uuid '{uuid}'."
RUNNING_TIME_OUT_OF_RANGE = (
    "exposure_rate_per_day is too small: the running time would not be a representable number of days"
)
EXPERIMENT_NOT_STARTED = "Experiment has not been started yet"
TIMESERIES_NOT_STARTED = "Cannot recalculate timeseries for experiment that hasn't started"
ENTITY_LIST_INVALID = "must be a JSON list of entity objects"
ENTITY_LIST_TOO_LONG = "must list at most {limit} entities"

HOLDOUT_FILTERS_NOT_LIST = "Holdout filters must be a non-empty list of groups."
HOLDOUT_GROUP_NOT_OBJECT = "Holdout group at index {index} must be an object."
ROLLOUT_PERCENTAGE_MISSING = "Rollout percentage must be present."
ROLLOUT_PERCENTAGE_OUT_OF_RANGE = "Rollout percentage must be between 0 and 100."
HOLDOUT_GROUP_PROPERTIES_NOT_LIST = (
    "Holdout group at index {index}: properties must be a list of property filters, each an object with a 'key'."
)


QUERY_METRIC_REQUIRED = "metric is required for an ExperimentQuery"
METRIC_REQUIRED = "metric is required"
FINGERPRINT_REQUIRED = "fingerprint is required"
METRIC_UUID_PARAM_REQUIRED = "metric_uuid query parameter is required"
FINGERPRINT_PARAM_REQUIRED = "fingerprint query parameter is required"
METRIC_NOT_OBJECT = "metric must be an object"
FINGERPRINT_INVALID = "fingerprint must be a string of at most 64 characters"
NULL_CHARACTERS = "metric and fingerprint must not contain null characters"
NO_VARIANTS_TO_COMPARE = "The experiment's feature flag has no variants to compare."
METRIC_WITHOUT_UUID = "The metric has no uuid; daily results are stored per metric uuid."
UNKNOWN_BASELINE_VARIANT = "The baseline variant '{key}' is not one of the experiment's variants."

BANDIT_NOT_OBJECT = "parameters.bandit must be an object"
BANDIT_UNKNOWN_SETTINGS = "Unknown bandit settings: {keys}. Use: {allowed}"
BANDIT_NOT_BOOLEAN = "parameters.bandit.{setting} must be a boolean"
BANDIT_MIN_WEIGHT_INVALID = (
    "parameters.bandit.min_variation_weight must be a number from 0 up to (not including) 1/{variants} "
    "for {variants} variants"
)
BANDIT_HOURS_INVALID = "parameters.bandit.{setting} must be a number of hours from {minimum} to {maximum}"
BANDIT_SEED_INVALID = "parameters.bandit.seed must be a non-negative integer below 2**63"
BANDIT_METRIC_UUID_INVALID = "parameters.bandit.decision_metric_uuid must be a non-empty string"
BANDIT_UNKNOWN_DECISION_METRIC = (
    "parameters.bandit.decision_metric_uuid '{uuid}' is not a primary metric of this experiment"
)
BANDIT_NO_DECISION_METRIC = "A bandit needs a primary metric to decide on (parameters.bandit.decision_metric_uuid)"
BANDIT_QUANTILE_DECISION_METRIC = "A bandit cannot decide on a quantile metric; choose a mean, funnel or ratio metric"
BANDIT_QUANTILE_METRIC = (
    "Bandit experiments cannot analyse quantile metrics: their changing weights are corrected by combining sums per"
    " period, and quantiles are not sums; use a mean, funnel or ratio metric"
)
BANDIT_NEEDS_BAYESIAN = "Bandit experiments need stats_config.method 'bayesian' (got '{method}')"
BANDIT_NEEDS_FIRST_SEEN = "Bandit experiments need exposure_criteria.multiple_variant_handling 'first_seen'"
BANDIT_VARIANTS_NOT_ANALYSED = "Every flag variant of a bandit must be analysed; excluded: {keys}"
