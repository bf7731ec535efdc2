"""Who is exposed to an experiment, and to which variant: `exposure_criteria` (api.md §3.4) and the flag's variants,
read into a typed spec, with PostHog's newest defaults."""

from dataclasses import dataclass

from experiments import messages
from experiments.definitions.exposure import ExposureProblem, parse_exposure_criteria
from experiments.models import Experiment
from experiments_api.exceptions import DomainError
from flags.evaluation import holdout_variant_key

from .spec import PropertyFilter, computable_property_filters, unsupported

DEFAULT_EXPOSURE_EVENT = "$feature_flag_called"


@dataclass(frozen=True)
class Exposure:
    event: str
    properties: tuple[PropertyFilter, ...]
    flag_key: str
    variants: tuple[str, ...]
    multiple_variant_handling: str
    test_account_filters: tuple[PropertyFilter, ...]

    @property
    def variant_property(self) -> str:
        """PostHog reads the variant from the flag response, or from `$feature/<key>` on a custom event."""
        return "$feature_flag_response" if self.event == DEFAULT_EXPOSURE_EVENT else f"$feature/{self.flag_key}"


def experiment_variant_keys(experiment: Experiment) -> tuple[str, ...]:
    """The flag's variants minus `parameters.excluded_variants`, plus the holdout arm `holdout-<id>`."""
    excluded = set((experiment.parameters or {}).get("excluded_variants") or [])
    keys = [variant["key"] for variant in experiment.feature_flag.variants if variant.get("key") not in excluded]
    if not keys:
        raise DomainError(messages.NO_VARIANTS_TO_COMPARE, code="no_variants")
    if experiment.holdout_id is not None:
        keys.append(holdout_variant_key(experiment.holdout_id))
    return tuple(keys)


def parse_exposure(experiment: Experiment) -> Exposure:
    """Exposure settings of the experiment; `filterTestAccounts` defaults to true, as in PostHog."""
    try:
        criteria = parse_exposure_criteria(experiment.exposure_criteria)
    except ExposureProblem as problem:
        raise DomainError(str(problem), attr="exposure_criteria") from None
    if (experiment.parameters or {}).get("aggregation_group_type_index") is not None:
        raise unsupported("group aggregation (aggregation_group_type_index)")
    if experiment.only_count_matured_users:
        raise unsupported("only_count_matured_users")
    if criteria.action_id is not None:
        raise unsupported("an ActionsNode exposure_config")
    test_account_filters = ()
    if criteria.filter_test_accounts:
        test_account_filters = computable_property_filters(
            experiment.project.test_account_filters, "the project's test account filters"
        )
    return Exposure(
        event=criteria.event or DEFAULT_EXPOSURE_EVENT,
        properties=computable_property_filters(list(criteria.properties), "exposure_config.properties"),
        flag_key=experiment.feature_flag.key,
        variants=experiment_variant_keys(experiment),
        multiple_variant_handling=criteria.multiple_variant_handling,
        test_account_filters=test_account_filters,
    )
