"""Messages of the flags app, shared by code and tests."""

INVALID_FLAG_KEY = "Only letters, numbers, hyphens (-) & underscores (_) are allowed."
DUPLICATE_FLAG_KEY = "There is already a feature flag with this key."
FLAG_USED_BY_RUNNING_EXPERIMENT = (
    "Cannot delete a feature flag that is in use by the running experiment '{name}' (id {id}). "
    "End the experiment first."
)
FLAG_VERSION_CONFLICT = (
    "The feature flag was changed by someone else (version {current}, expected {expected}). Reload and try again."
)
FLAG_KEY_TAKEN_CONCURRENTLY = "A feature flag with this key was created and removed by a concurrent request. Try again."
FLAG_FILTERS_NOT_OBJECT = "Feature flag filters must be an object."
GROUPS_NOT_LIST = "filters.groups must be a list of release conditions."
GROUP_NOT_OBJECT = "Release condition at index {index} must be an object."
GROUP_PROPERTIES_NOT_LIST = (
    "Release condition at index {index}: properties must be a list of property filters, each an object with a 'key'."
)
GROUP_ROLLOUT_INVALID = "Release condition at index {index}: rollout_percentage must be a number between 0 and 100."
GROUP_VARIANT_UNKNOWN = "Release condition at index {index}: variant '{variant}' is not one of the flag's variants."
HOLDOUT_INVALID = (
    "filters.holdout must be null or an object with an integer id and an exclusion_percentage from 0 to 100."
)
HOLDOUT_GROUPS_NOT_LIST = "filters.holdout_groups must be null or a list of groups."
HOLDOUT_GROUP_INVALID = (
    "Holdout group at index {index} must be an object with a rollout_percentage between 0 and 100 and a variant string."
)
MULTIVARIATE_NOT_OBJECT = "filters.multivariate must be null or an object with a 'variants' list."
MULTIVARIATE_VARIANTS_NOT_LIST = "filters.multivariate.variants must be a list."
MULTIVARIATE_TOO_MANY_VARIANTS = "A feature flag can have at most {limit} variants."
MULTIVARIATE_VARIANT_NOT_OBJECT = "Variant at index {index} must be an object."
VARIANT_KEY_MISSING = "Variant at index {index} must have a non-empty string 'key'."
VARIANT_NAME_INVALID = "Variant at index {index}: name must be a string or null."
VARIANT_ROLLOUT_INVALID = "Variant at index {index}: rollout_percentage must be a number between 0 and 100."
DUPLICATE_VARIANT_KEY = "Invalid variant definitions: variant key '{key}' is used more than once."
VARIANT_SUM_NOT_100 = "Invalid variant definitions: Variant rollout percentages must sum to 100."
PAYLOADS_NOT_OBJECT = "filters.payloads must be an object keyed by variant."
PAYLOAD_KEY_NOT_A_VARIANT = "Payload key '{key}' is not one of the flag's variants."
BOOLEAN_FLAG_PAYLOAD_KEY = "A boolean flag can only have a payload for 'true', not '{key}'."
AGGREGATION_INDEX_INVALID = "filters.aggregation_group_type_index must be null or an integer from 0 to {maximum}."
COHORT_FILTERS_NOT_OBJECT = "Cohort filters must be an object."
COHORT_PROPERTIES_INVALID = (
    "Cohort filters.properties must be an object with 'type' ('AND' or 'OR') and a 'values' list."
)
BEHAVIORAL_COHORT_IN_FLAG = "Cohort '{name}' with filters on events cannot be used in feature flags."
BEHAVIORAL_FILTERS_IN_FLAG_COHORT = "Behavioral filters cannot be added to cohorts used in feature flags."
