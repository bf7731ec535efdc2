"""The one parser of `exposure_criteria` (api.md §3.4): which event (or action) exposes a unit, with which
property filters, how units seen in several variants are handled, and whether test accounts are filtered out.

Writes validate with it; the SQL engine and the exposure cohort read the same parsed criteria.
"""

from dataclasses import dataclass

from experiments import messages

MULTIPLE_VARIANT_HANDLING = ("exclude", "first_seen")
EXPOSURE_CONFIG_KINDS = ("ExperimentEventExposureConfig", "ActionsNode")


class ExposureProblem(Exception):
    """What is wrong with `exposure_criteria`; the message is the API's error text."""


@dataclass(frozen=True)
class ExposureCriteria:
    event: str | None = None  # None: the flag's own `$feature_flag_called`
    action_id: int | None = None
    properties: tuple[dict, ...] = ()  # property filters as PostHog stores them
    multiple_variant_handling: str = "exclude"
    filter_test_accounts: bool = True


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _exposure_config(config: object) -> ExposureCriteria:
    if not isinstance(config, dict):
        raise ExposureProblem(messages.INVALID_EXPOSURE_CRITERIA)
    kind = config.get("kind", "ExperimentEventExposureConfig")
    if kind not in EXPOSURE_CONFIG_KINDS:
        raise ExposureProblem(messages.INVALID_EXPOSURE_CRITERIA)
    if kind == "ActionsNode":
        if not _is_int(config.get("id")):
            raise ExposureProblem(messages.INVALID_EXPOSURE_CRITERIA)
        return ExposureCriteria(action_id=config["id"])
    event = config.get("event")
    properties = config.get("properties") or []
    if not (isinstance(event, str) and event and isinstance(properties, list)):
        raise ExposureProblem(messages.INVALID_EXPOSURE_CRITERIA)
    if not all(isinstance(prop, dict) for prop in properties):
        raise ExposureProblem(messages.INVALID_EXPOSURE_CRITERIA)
    return ExposureCriteria(event=event, properties=tuple(properties))


def parse_exposure_criteria(criteria: object) -> ExposureCriteria:
    """Parse `exposure_criteria` (None means PostHog's defaults); raises ExposureProblem."""
    if criteria is None:
        return ExposureCriteria()
    if not isinstance(criteria, dict):
        raise ExposureProblem(messages.INVALID_EXPOSURE_CRITERIA)
    filter_test_accounts = criteria.get("filterTestAccounts", True)
    if not isinstance(filter_test_accounts, bool):
        raise ExposureProblem(messages.FILTER_TEST_ACCOUNTS_NOT_BOOLEAN)
    handling = criteria.get("multiple_variant_handling")
    if handling is not None and handling not in MULTIPLE_VARIANT_HANDLING:
        raise ExposureProblem(messages.INVALID_MULTIPLE_VARIANT_HANDLING)
    config = criteria.get("exposure_config")
    target = ExposureCriteria() if config is None else _exposure_config(config)
    return ExposureCriteria(
        event=target.event,
        action_id=target.action_id,
        properties=target.properties,
        multiple_variant_handling=handling or "exclude",
        filter_test_accounts=filter_test_accounts,
    )
