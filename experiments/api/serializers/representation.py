"""How an experiment reads in responses: what ExperimentSerializer adds to the stored fields, and the experiments
list, which shapes `values()` rows (experiments.selectors.experiment_list_rows) into exactly the serializer's output.

The list does not build model instances nor run DRF's fields: for a page of 50 experiments those cost most of the
request. `tests/test_experiment_list_rows.py` compares every row with the serializer's output for experiments in
every state, so a field added to one and not the other fails there.
"""

import datetime as dt

from django.utils import timezone
from rest_framework import serializers

from experiments.definitions.fingerprint import FINGERPRINT_SETTINGS, metric_fingerprint
from experiments.models import experiment_status
from experiments_api.models import User

LEGACY_QUERY_KEYS = ("count_query", "funnels_query")
USER_ACCESS_LEVEL = "editor"  # see ExperimentSerializer.get_user_access_level


def with_experiment_date_range(metric, *, start_date: dt.datetime | None, end_date: dt.datetime | None):
    """A legacy trends/funnels metric's `dateRange` shows the experiment's own dates, as PostHog renders it (§3.2)."""
    if not isinstance(metric, dict):
        return metric
    date_range = {
        "date_from": start_date.isoformat() if start_date else "",
        "date_to": end_date.isoformat() if end_date else "",
        "explicitDate": True,
    }
    normalised = dict(metric)
    for key in LEGACY_QUERY_KEYS:
        query = normalised.get(key)
        if isinstance(query, dict) and "dateRange" in query:
            normalised[key] = {**query, "dateRange": date_range}
    return normalised


def shown_metrics(metrics, *, start_date: dt.datetime | None, end_date: dt.datetime | None):
    if not isinstance(metrics, list):
        return metrics
    return [with_experiment_date_range(metric, start_date=start_date, end_date=end_date) for metric in metrics]


def shown_parameters(parameters):
    """Each flag variant also shows its `rollout_percentage` as `split_percent`, as PostHog's API does."""
    variants = (parameters or {}).get("feature_flag_variants") if isinstance(parameters, dict) else None
    if not isinstance(variants, list):
        return parameters
    return {
        **parameters,
        "feature_flag_variants": [
            {**variant, "split_percent": variant.get("rollout_percentage")} if isinstance(variant, dict) else variant
            for variant in variants
        ],
    }


def saved_metric_query(query, settings: dict) -> dict:
    """A linked saved metric's `query` with the experiment's dates and its fingerprint under the experiment's
    `settings` (its FINGERPRINT_SETTINGS fields and end_date)."""
    shown = with_experiment_date_range(
        dict(query or {}), start_date=settings["start_date"], end_date=settings["end_date"]
    )
    shown["fingerprint"] = metric_fingerprint(shown, **{name: settings[name] for name in FINGERPRINT_SETTINGS})
    return shown


class ExperimentRowsSerializer(serializers.ListSerializer):
    """ExperimentSerializer's `many=True` serializer, for the list: rows from experiment_list_rows, with their
    links added by with_saved_metric_links, each shaped as ExperimentSerializer shapes the experiment."""

    def to_representation(self, rows: list[dict]) -> list[dict]:
        shaper = _RowShaper(timezone.get_current_timezone())
        return [shaper.experiment(row) for row in rows]


class _RowShaper:
    def __init__(self, current_timezone: dt.tzinfo) -> None:
        self.timezone = current_timezone

    def datetime(self, value: dt.datetime | None) -> str | None:
        """DRF's DateTimeField output: ISO 8601 in the current timezone, `Z` for UTC."""
        if value is None:
            return None
        text = value.astimezone(self.timezone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def experiment(self, row: dict) -> dict:
        start_date, end_date = row["start_date"], row["end_date"]
        holdout_id = row["holdout_id"]
        return {
            "id": row["id"],
            "name": row["name"],
            "description": row["description"],
            "start_date": self.datetime(start_date),
            "end_date": self.datetime(end_date),
            "feature_flag_key": row["feature_flag__key"],
            "feature_flag": self.flag(row),
            "holdout": None if holdout_id is None else self.holdout(row),
            "holdout_id": holdout_id,
            "exposure_cohort": row["exposure_cohort_id"],
            "parameters": shown_parameters(row["parameters"]),
            "secondary_metrics": row["secondary_metrics"],
            "saved_metrics": [self.link(link, row) for link in row["saved_metric_links"]],
            "filters": row["filters"],
            "archived": row["archived"],
            "deleted": row["deleted"],
            "created_by": self.user(row, "created_by__"),
            "created_at": self.datetime(row["created_at"]),
            "updated_at": self.datetime(row["updated_at"]),
            "type": row["type"],
            "exposure_criteria": row["exposure_criteria"],
            "metrics": shown_metrics(row["metrics"], start_date=start_date, end_date=end_date),
            "metrics_secondary": shown_metrics(row["metrics_secondary"], start_date=start_date, end_date=end_date),
            "stats_config": row["stats_config"],
            "scheduling_config": row["scheduling_config"],
            "conclusion": row["conclusion"],
            "conclusion_comment": row["conclusion_comment"],
            "primary_metrics_ordered_uuids": row["primary_metrics_ordered_uuids"],
            "secondary_metrics_ordered_uuids": row["secondary_metrics_ordered_uuids"],
            "only_count_matured_users": row["only_count_matured_users"],
            "status": str(
                experiment_status(start_date=start_date, end_date=end_date, flag_active=row["feature_flag__active"])
            ),
            "user_access_level": USER_ACCESS_LEVEL,
        }

    def flag(self, row: dict) -> dict:
        return {
            "id": row["feature_flag__id"],
            "team_id": row["feature_flag__project_id"],
            "name": row["feature_flag__name"],
            "key": row["feature_flag__key"],
            "filters": row["feature_flag__filters"],
            "deleted": row["feature_flag__deleted"],
            "active": row["feature_flag__active"],
            "ensure_experience_continuity": row["feature_flag__ensure_experience_continuity"],
            "has_encrypted_payloads": False,
            "version": row["feature_flag__version"],
            "evaluation_runtime": row["feature_flag__evaluation_runtime"],
            "evaluation_tags": row["feature_flag__evaluation_tags"],
        }

    def holdout(self, row: dict) -> dict:
        return {
            "id": row["holdout_id"],
            "name": row["holdout__name"],
            "description": row["holdout__description"],
            "filters": row["holdout__filters"],
            "created_by": self.user(row, "holdout__created_by__"),
            "created_at": self.datetime(row["holdout__created_at"]),
            "updated_at": self.datetime(row["holdout__updated_at"]),
        }

    def user(self, row: dict, prefix: str) -> dict | None:
        if row[f"{prefix}id"] is None:
            return None
        user = {column: row[prefix + column] for column in User.BASIC_FIELDS}
        user["uuid"] = str(user["uuid"])
        return user

    def link(self, link: dict, row: dict) -> dict:
        return {
            "id": link["id"],
            "experiment": link["experiment_id"],
            "saved_metric": link["saved_metric_id"],
            "metadata": link["metadata"],
            "created_at": self.datetime(link["created_at"]),
            "query": saved_metric_query(link["saved_metric__query"], row),
            "name": link["saved_metric__name"],
        }
