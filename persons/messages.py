"""Messages of the persons API, shared by code and tests (PostHog's wording where it has one)."""

NOT_A_PERSON_ID = (
    "The ID provided does not look like a personID. If you are using a distinctId, please use "
    "/persons?distinct_id=<id> instead."
)
PERSON_NOT_FOUND = "Person not found."
CREATE_NOT_ALLOWED = (
    "Creating persons via this API is not allowed. Please create persons by sending an $identify event. "
    "See https://posthog.com/docs/product-analytics/identify for details."
)
PROPERTIES_NOT_LIST = "properties must be a JSON list of person property filters."
PROPERTY_FILTER_INVALID = (
    "Each property filter needs a string `key` (and a `value` unless the operator is is_set or is_not_set)."
)
PROPERTIES_NOT_OBJECT = "properties must be an object."
UNSET_KEY_INVALID = "$unset must be the name of a property."

# Behavioural cohort filters (persons/behaviours.py): "<where>: <problem>".
BEHAVIOUR_INVALID = "Invalid behavioral filter at {path}: {problem}"
BEHAVIOUR_UNKNOWN_KEYS = "unknown keys {keys}."
BEHAVIOUR_VALUE_INVALID = "value must be one of {kinds}."
BEHAVIOUR_EVENT_INVALID = "{field} must be an event name (a non-empty string of at most {limit} characters)."
BEHAVIOUR_ACTIONS = "{field} 'actions' is not supported: this server has no actions, use 'events'."
BEHAVIOUR_EVENT_TYPE_INVALID = "{field} must be 'events'."
BEHAVIOUR_POSITIVE_INTEGER = "{field} must be a positive integer."
BEHAVIOUR_INTEGER_RANGE = "{field} must be an integer from 1 to {maximum}."
BEHAVIOUR_INTERVAL_INVALID = "{field} must be one of {units}."
BEHAVIOUR_WINDOW_TOO_LONG = "{field} makes a window longer than {years} years."
BEHAVIOUR_EXPLICIT_DATETIME_INVALID = (
    "explicit_datetime must be an ISO 8601 date or datetime, or relative such as '-30d' (h, d, w, m, y)."
)
BEHAVIOUR_EXPLICIT_DATETIME_UNUSED = (
    "explicit_datetime does not apply to {kind}: its windows are time_value/time_interval back from now."
)
BEHAVIOUR_NEGATION_INVALID = "negation must be a boolean."
BEHAVIOUR_OPERATOR_INVALID = "operator must be one of {operators} (none means exactly)."
BEHAVIOUR_FILTERS_NOT_LIST = "event_filters must be a list of property filters."
BEHAVIOUR_FILTER_TYPE = "event_filters can only filter on event properties, not '{type}'."
BEHAVIOUR_FILTER_OPERATOR = "event_filters operator '{operator}' is not one of {operators}."
BEHAVIOUR_SEQ_WINDOW_NOT_SHORTER = (
    "seq_time_value/seq_time_interval (the recent window) must be shorter than time_value/time_interval."
)
BEHAVIOUR_MIN_PERIODS_TOO_MANY = "min_periods cannot be greater than total_periods."

# A static cohort's CSV upload (persons/cohort_csv.py), PostHog's texts where it has them.
CSV_EMPTY = "CSV file is empty. Please upload a CSV file with at least one row of data."
CSV_MISSING_ID_COLUMN = (
    "Multi-column CSV must contain at least one column with a supported ID header: 'person_id', 'Person .id' "
    "(PostHog export format), 'distinct_id', 'distinct-id', or 'email'. Found columns: {columns}"
)
CSV_NO_VALID_IDS = (
    "CSV file contains no valid person IDs, distinct IDs, or email addresses. Please ensure your file has data rows "
    "with person IDs, distinct IDs, or email addresses."
)
CSV_ENCODING_ERROR = "CSV file encoding is not supported. Please save your file as UTF-8 and try again."
CSV_FORMAT_ERROR = "CSV file format is invalid. Please check your file format and try again."
CSV_TOO_LARGE = "CSV file is too large: upload at most {megabytes} MB at a time."
CSV_NOT_STATIC = "Only a static cohort takes a CSV file: send is_static true."

# Person ingestion.
PERSONS_CONTENDED = "Too many concurrent updates of the same persons. Try again shortly."
