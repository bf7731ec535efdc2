"""The experiment's side of its feature flag: eligibility, the flag a new experiment creates, draft syncing."""

from experiments import messages
from experiments.definitions.experiment import CONTROL_VARIANT_KEY
from experiments.models import ExperimentHoldout
from experiments_api.exceptions import DomainError
from flags.models import CreationContext, FeatureFlag

DEFAULT_VARIANTS = [
    {"key": "control", "name": "Control Group", "rollout_percentage": 50},
    {"key": "test", "name": "Test Variant", "rollout_percentage": 50},
]


def ensure_flag_eligible(flag: FeatureFlag) -> None:
    """An existing flag can back an experiment when it has ≥ 2 variants and `control` comes first (Layer A)."""
    variants = flag.variants
    if len(variants) < 2:
        raise DomainError(messages.FLAG_NOT_ELIGIBLE)
    if variants[0].get("key") != CONTROL_VARIANT_KEY:
        raise DomainError(messages.FLAG_CONTROL_NOT_FIRST)


def holdout_groups(holdout: ExperimentHoldout | None) -> list[dict] | None:
    return holdout.filters if holdout is not None else None


def variants_from_parameters(parameters: dict | None) -> list[dict]:
    """The variants asked for in `parameters`, or the 50/50 control/test default."""
    variants = (parameters or {}).get("feature_flag_variants")
    return [dict(variant) for variant in variants] if variants else [dict(v) for v in DEFAULT_VARIANTS]


def new_flag_data(*, key: str, experiment_name: str, parameters: dict | None, holdout, active: bool) -> dict:
    parameters = parameters or {}
    filters = {
        "groups": [{"properties": [], "rollout_percentage": parameters.get("rollout_percentage", 100)}],
        "multivariate": {"variants": variants_from_parameters(parameters)},
        "aggregation_group_type_index": parameters.get("aggregation_group_type_index"),
        "holdout_groups": holdout_groups(holdout),
    }
    if parameters.get("feature_flag_payloads"):
        filters["payloads"] = parameters["feature_flag_payloads"]
    data = {
        "key": key,
        "name": messages.NEW_FLAG_NAME.format(name=experiment_name),
        "filters": filters,
        "active": active,
        "creation_context": CreationContext.EXPERIMENTS,
    }
    if "ensure_experience_continuity" in parameters:
        data["ensure_experience_continuity"] = parameters["ensure_experience_continuity"]
    return data


def draft_flag_filters(flag: FeatureFlag, *, parameters: dict, holdout) -> dict:
    """Rewrite a draft's flag from `parameters` (§4.4.3). Without variants, the 50/50 default is restored,
    as PostHog does; release groups and other keys are kept."""
    filters = dict(flag.filters or {})
    filters["multivariate"] = {**(filters.get("multivariate") or {}), "variants": variants_from_parameters(parameters)}
    filters["aggregation_group_type_index"] = parameters.get("aggregation_group_type_index")
    filters["holdout_groups"] = holdout_groups(holdout)
    if "rollout_percentage" in parameters and filters.get("groups"):
        filters["groups"] = [{**filters["groups"][0], "rollout_percentage": parameters["rollout_percentage"]}] + list(
            filters["groups"][1:]
        )
    return filters
