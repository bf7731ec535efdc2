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
