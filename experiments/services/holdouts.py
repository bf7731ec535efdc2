"""Holdout rules: a share of users kept out of every experiment that uses the holdout.

A holdout's groups are copied into `filters.holdout_groups` of the flags of its experiments, so updates and
deletes rewrite them.
"""

from django.db import transaction
from django.db.models import QuerySet

from experiments.models import ExperimentHoldout
from experiments_api.models import Project, User
from experiments_api.updates import model_update
from flags.evaluation import holdout_variant_key
from flags.models import FeatureFlag
from flags.services import feature_flags_holdout_groups_set


def _tagged_groups(groups: list[dict], holdout_id: int) -> list[dict]:
    return [{**group, "variant": holdout_variant_key(holdout_id)} for group in groups]


def _flags_of_holdout(holdout: ExperimentHoldout) -> QuerySet[FeatureFlag]:
    return FeatureFlag.objects.filter(experiments__holdout=holdout)


@transaction.atomic
def holdout_create(
    *, project: Project, user: User | None, name: str, filters: list[dict], description: str | None = None
) -> ExperimentHoldout:
    """Create a holdout; each group gets `variant: "holdout-<id>"`."""
    holdout = ExperimentHoldout.objects.create(
        project=project, created_by=user, name=name, description=description, filters=filters
    )
    holdout.filters = _tagged_groups(holdout.filters, holdout.id)
    holdout.save(update_fields=["filters"])
    return holdout


@transaction.atomic
def holdout_update(*, holdout: ExperimentHoldout, user: User | None, changes: dict) -> ExperimentHoldout:
    """Apply validated `changes`; new filters are tagged and written into the flags of the holdout's experiments."""
    changes = dict(changes)
    if "filters" in changes:
        changes["filters"] = _tagged_groups(changes["filters"], holdout.id)
    filters_changed = "filters" in changes and changes["filters"] != holdout.filters
    model_update(instance=holdout, changes=changes)
    if filters_changed:
        feature_flags_holdout_groups_set(flags=_flags_of_holdout(holdout), holdout_groups=holdout.filters, user=user)
    return holdout


@transaction.atomic
def holdout_delete(*, holdout: ExperimentHoldout, user: User | None) -> None:
    """Clear the holdout from its experiments' flags, then delete it (the experiments' links become null)."""
    feature_flags_holdout_groups_set(flags=_flags_of_holdout(holdout), holdout_groups=None, user=user)
    holdout.delete()
