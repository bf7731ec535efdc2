"""Messages of the experiments_api app, shared by code and tests."""

INVALID_PERSONAL_API_KEY = "Personal API key found in request {source} is invalid."
DATABASE_REJECTED_VALUE = (
    "The request contains a value the database cannot store (such as a NUL character or an out-of-range number)."
)
MISSING_SCOPE = "API key missing required scope '{scope}'"
PROJECT_NOT_ALLOWED_FOR_KEY = "API key does not have access to the requested project: ID {project_id}."
NOT_A_PROJECT_MEMBER = "You don't have access to the project."
PROJECT_NOT_FOUND = "Project not found."
NOT_FOUND = "Not found."
SERVER_ERROR = "A server error occurred."
MUST_BE_POSITIVE_INTEGER = "{name} must be a positive integer."
MUST_BE_NON_NEGATIVE_INTEGER = "{name} must be a non-negative integer."
JSON_NESTED_TOO_DEEP = "JSON parse error - the body is nested deeper than {limit} levels."
FORM_TOO_LARGE = "Form parse error - the body has too many fields or files, or is too large."
DEPENDENCY_UNAVAILABLE = "The {dependency} is unavailable. Try again shortly."
