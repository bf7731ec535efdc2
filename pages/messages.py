"""Texts the results pages show, shared by the code and the tests."""

SIGNIFICANT_WIN = "Significant: better than control"
SIGNIFICANT_LOSS = "Significant: worse than control"
NOT_SIGNIFICANT = "Not significant: no clear difference yet"
NOT_ENOUGH_DATA = "Not enough data to compare"

METRIC_NOT_COMPUTED = "No results yet: recalculate to compute them."
METRIC_FAILED = "The last calculation failed: {error}"
DRAFT_NO_RESULTS = "This experiment is a draft: results appear once it is launched."

SRM_HEALTHY = "Sample ratio check: p = {p_value}, the split matches the flag."
SRM_MISMATCH = "Sample ratio check: p = {p_value}, a mismatch."
SRM_NOT_ENOUGH_DATA = "Sample ratio check: not enough exposures yet (it needs {minimum})."

WARNING_SAMPLE_RATIO_MISMATCH = (
    "Sample ratio mismatch: exposures do not match the flag's split (p = {p_value}). "
    "Check the flag implementation before trusting these results."
)
WARNING_NOT_ENOUGH_EXPOSURES = (
    "Not enough exposures: {variants} {verb} fewer than {minimum} exposed users, too few to compare."
)
WARNING_MULTIPLE_VARIANTS = (
    "{share} of exposed users saw more than one variant ($multiple) and are left out of the results."
)
WARNING_EXPOSURES_UNAVAILABLE = "Exposures could not be counted: {error}"
