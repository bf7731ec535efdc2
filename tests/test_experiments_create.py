"""POST /experiments/: the flag side effects, defaults and metric bookkeeping of §4.2, and every create error."""

import threading
import time

import pytest
from django.db import connection, connections, transaction
from rest_framework.test import APIClient

from experiments import messages
from experiments.models import Experiment, ExperimentToSavedMetric
from experiments_api.exceptions import error_body
from flags import messages as flag_messages
from flags.models import FeatureFlag
from tests.factories import (
    FeatureFlagFactory,
    HoldoutFactory,
    ProjectFactory,
    SavedMetricFactory,
    UserFactory,
    mean_metric,
    member_of,
)
from tests.helpers import NOT_A_MEMBER, missing_scope, validation_error

DEFAULT_VARIANTS = [
    {"key": "control", "name": "Control Group", "rollout_percentage": 50},
    {"key": "test", "name": "Test Variant", "rollout_percentage": 50},
]
EXPERIMENT_FIELDS = {
    "id",
    "name",
    "description",
    "start_date",
    "end_date",
    "feature_flag_key",
    "feature_flag",
    "holdout",
    "holdout_id",
    "exposure_cohort",
    "parameters",
    "secondary_metrics",
    "saved_metrics",
    "filters",
    "archived",
    "deleted",
    "created_by",
    "created_at",
    "updated_at",
    "type",
    "exposure_criteria",
    "metrics",
    "metrics_secondary",
    "stats_config",
    "scheduling_config",
    "conclusion",
    "conclusion_comment",
    "primary_metrics_ordered_uuids",
    "secondary_metrics_ordered_uuids",
    "only_count_matured_users",
    "status",
    "user_access_level",
}


def experiments_url(project) -> str:
    return f"/api/projects/{project.id}/experiments/"


def create(client, project, **body):
    return client.post(
        experiments_url(project), {"name": "Checkout", "feature_flag_key": "checkout", **body}, format="json"
    )


def assert_nothing_written(project) -> None:
    assert not Experiment.objects.filter(project=project).exists()
    assert not FeatureFlag.objects.filter(project=project).exists()
    assert not ExperimentToSavedMetric.objects.exists()


def test_create_makes_an_inactive_flag_for_a_draft(api_client, project, user):
    response = create(api_client, project)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == EXPERIMENT_FIELDS
    flag = FeatureFlag.objects.get(project=project)
    assert flag.key == "checkout"
    assert flag.name == "Feature Flag for Experiment Checkout"
    assert flag.active is False
    assert flag.creation_context == "experiments"
    assert flag.created_by == user
    assert flag.filters == {
        "groups": [{"properties": [], "rollout_percentage": 100}],
        "multivariate": {"variants": DEFAULT_VARIANTS},
        "aggregation_group_type_index": None,
        "holdout_groups": None,
    }
    experiment = Experiment.objects.get(pk=body["id"])
    assert experiment.feature_flag == flag
    assert experiment.created_by == user
    assert body["feature_flag_key"] == "checkout"
    assert body["feature_flag"] == {
        "id": flag.id,
        "team_id": project.id,
        "name": "Feature Flag for Experiment Checkout",
        "key": "checkout",
        "filters": flag.filters,
        "deleted": False,
        "active": False,
        "ensure_experience_continuity": False,
        "has_encrypted_payloads": False,
        "version": flag.version,
        "evaluation_runtime": "all",
        "evaluation_tags": [],
    }
    assert body["created_by"]["id"] == user.id
    assert body["created_by"]["email"] == user.email
    assert body["status"] == "draft"
    assert body["stats_config"] == {"method": "bayesian"}
    assert body["start_date"] is None
    assert body["holdout"] is None
    assert body["holdout_id"] is None
    assert body["saved_metrics"] == []
    assert body["metrics"] == []
    assert body["primary_metrics_ordered_uuids"] is None
    assert body["user_access_level"] == "editor"
    assert body["type"] == "product"


def test_create_with_a_start_date_launches_with_an_active_flag(api_client, project):
    response = create(api_client, project, start_date="2025-01-10T12:00:00Z")

    assert response.status_code == 201, response.json()
    assert response.json()["start_date"] == "2025-01-10T12:00:00Z"
    assert response.json()["status"] == "running"
    assert FeatureFlag.objects.get(project=project).active is True


def test_the_new_flag_takes_its_configuration_from_parameters(api_client, project):
    variants = [
        {"key": "control", "rollout_percentage": 34},
        {"key": "red", "split_percent": 33},
        {"key": "blue", "rollout_percentage": 10, "split_percent": 33},
    ]
    parameters = {
        "feature_flag_variants": variants,
        "aggregation_group_type_index": 1,
        "ensure_experience_continuity": True,
        "rollout_percentage": 40,
        "feature_flag_payloads": {"red": '{"color": "red"}'},
        "minimum_detectable_effect": 5,
    }

    response = create(api_client, project, parameters=parameters)

    assert response.status_code == 201, response.json()
    stored_variants = [
        {"key": "control", "rollout_percentage": 34},
        {"key": "red", "rollout_percentage": 33},
        {"key": "blue", "rollout_percentage": 33},
    ]
    flag = FeatureFlag.objects.get(project=project)
    assert flag.filters == {
        "groups": [{"properties": [], "rollout_percentage": 40}],
        "multivariate": {"variants": stored_variants},
        "aggregation_group_type_index": 1,
        "holdout_groups": None,
        "payloads": {"red": '{"color": "red"}'},
    }
    assert flag.ensure_experience_continuity is True
    # Responses echo each variant's percentage as `split_percent` too (PostHog's newer clients read it).
    assert response.json()["parameters"] == {
        **parameters,
        "feature_flag_variants": [
            {**variant, "split_percent": variant["rollout_percentage"]} for variant in stored_variants
        ],
    }


def test_an_eligible_existing_flag_is_reused_not_copied(api_client, project):
    flag = FeatureFlagFactory(project=project, key="existing", active=False)
    flag_filters = flag.filters

    response = create(
        api_client,
        project,
        feature_flag_key="existing",
        start_date="2025-01-10T12:00:00Z",
        # The experiment's variants are not checked against the reused flag, nor written into it.
        parameters={"feature_flag_variants": DEFAULT_VARIANTS + [{"key": "extra", "rollout_percentage": 0}]},
    )

    assert response.status_code == 201, response.json()
    assert FeatureFlag.objects.filter(project=project).count() == 1
    assert response.json()["feature_flag"]["id"] == flag.id
    flag.refresh_from_db()
    assert flag.filters == flag_filters
    # The reused flag's active state is left alone, even for a launched experiment: it reads as paused.
    assert flag.active is False
    assert response.json()["status"] == "paused"


def test_a_flag_with_the_key_in_another_project_is_not_reused(api_client, project):
    other_flag = FeatureFlagFactory(key="checkout")

    response = create(api_client, project)

    assert response.status_code == 201, response.json()
    flag = FeatureFlag.objects.get(project=project)
    assert flag.id != other_flag.id
    assert response.json()["feature_flag"]["id"] == flag.id


def test_a_deleted_flag_does_not_hold_its_key(api_client, project):
    deleted = FeatureFlagFactory(project=project, key="checkout", deleted=True)

    response = create(api_client, project)

    assert response.status_code == 201, response.json()
    assert response.json()["feature_flag"]["id"] != deleted.id
    assert FeatureFlag.objects.alive().get(project=project).key == "checkout"


@pytest.mark.parametrize(
    ("filters", "detail"),
    [
        ({"groups": [{"properties": [], "rollout_percentage": 100}]}, messages.FLAG_NOT_ELIGIBLE),
        ({"multivariate": {"variants": [{"key": "control", "rollout_percentage": 100}]}}, messages.FLAG_NOT_ELIGIBLE),
        (
            {
                "multivariate": {
                    "variants": [
                        {"key": "test", "rollout_percentage": 50},
                        {"key": "control", "rollout_percentage": 50},
                    ]
                }
            },
            messages.FLAG_CONTROL_NOT_FIRST,
        ),
    ],
)
def test_an_ineligible_existing_flag_is_refused(api_client, project, filters, detail):
    flag = FeatureFlagFactory(project=project, key="checkout", filters=filters)

    response = create(api_client, project)

    assert response.status_code == 400
    assert response.json() == validation_error(detail)
    assert not Experiment.objects.exists()
    flag.refresh_from_db()
    assert flag.filters == filters


def test_the_holdout_is_written_into_the_new_flag(api_client, project):
    holdout = HoldoutFactory(project=project)

    response = create(api_client, project, holdout_id=holdout.id)

    assert response.status_code == 201, response.json()
    flag = FeatureFlag.objects.get(project=project)
    assert flag.filters["holdout_groups"] == [
        {"properties": [], "rollout_percentage": 10, "variant": f"holdout-{holdout.id}"}
    ]
    body = response.json()
    assert body["holdout_id"] == holdout.id
    assert body["holdout"] == {
        "id": holdout.id,
        "name": holdout.name,
        "description": None,
        "filters": holdout.filters,
        "created_by": None,
        "created_at": holdout.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": holdout.updated_at.isoformat().replace("+00:00", "Z"),
    }


@pytest.mark.parametrize(
    ("stats_config", "stored"),
    [
        (None, {"method": "bayesian"}),
        ({"method": ""}, {"method": "bayesian"}),
        ({"bayesian": {"ci_level": 0.9}}, {"method": "bayesian", "bayesian": {"ci_level": 0.9}}),
        ({"method": "frequentist"}, {"method": "frequentist"}),
    ],
)
def test_the_stats_method_defaults_to_bayesian(api_client, project, stats_config, stored):
    body = {} if stats_config is None else {"stats_config": stats_config}

    response = create(api_client, project, **body)

    assert response.status_code == 201, response.json()
    assert response.json()["stats_config"] == stored


def test_metric_uuids_are_filled_in_and_deduplicated_across_lists_and_saved_metrics(api_client, project):
    saved = SavedMetricFactory(project=project)
    saved_uuid = saved.query["uuid"]

    response = create(
        api_client,
        project,
        metrics=[mean_metric(uuid="m1"), mean_metric(uuid="m1"), mean_metric(), mean_metric(uuid=saved_uuid)],
        metrics_secondary=[mean_metric(uuid="m1"), mean_metric(uuid="s1")],
        saved_metrics_ids=[{"id": saved.id, "metadata": {"type": "primary"}}],
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    primary = [metric["uuid"] for metric in body["metrics"]]
    secondary = [metric["uuid"] for metric in body["metrics_secondary"]]
    assert primary[0] == "m1"
    assert secondary[1] == "s1"
    all_uuids = primary + secondary + [saved_uuid]
    assert len(set(all_uuids)) == len(all_uuids) == 7
    assert all(isinstance(metric_uuid, str) and metric_uuid for metric_uuid in all_uuids)
    assert body["primary_metrics_ordered_uuids"] == primary + [saved_uuid]
    assert body["secondary_metrics_ordered_uuids"] == secondary
    # Every inline metric carries a fingerprint (its value is checked in test_fingerprint.py).
    for metric in body["metrics"] + body["metrics_secondary"]:
        assert len(metric["fingerprint"]) == 64
        assert int(metric["fingerprint"], 16) >= 0


def test_a_sent_ordering_is_kept_and_completed(api_client, project):
    response = create(
        api_client,
        project,
        metrics=[mean_metric(uuid="a"), mean_metric(uuid="b"), mean_metric(uuid="c")],
        primary_metrics_ordered_uuids=["b", "gone", "a"],
    )

    assert response.status_code == 201, response.json()
    # Extra uuids in the ordering are allowed; the missing ones are appended.
    assert response.json()["primary_metrics_ordered_uuids"] == ["b", "gone", "a", "c"]
    assert response.json()["secondary_metrics_ordered_uuids"] is None


def test_saved_metrics_are_linked_with_their_metadata(api_client, project):
    primary = SavedMetricFactory(project=project, name="Revenue")
    secondary = SavedMetricFactory(project=project, name="Clicks")
    untyped = SavedMetricFactory(project=project, name="Signups")

    response = create(
        api_client,
        project,
        saved_metrics_ids=[
            {"id": primary.id, "metadata": {"type": "primary"}},
            {"id": secondary.id, "metadata": {"type": "secondary", "breakdowns": [{"property": "$browser"}]}},
            {"id": untyped.id},
        ],
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert "saved_metrics_ids" not in body
    experiment = Experiment.objects.get(pk=body["id"])
    links = {link.saved_metric_id: link.metadata for link in experiment.saved_metric_links.all()}
    assert links == {
        primary.id: {"type": "primary"},
        secondary.id: {"type": "secondary", "breakdowns": [{"property": "$browser"}]},
        untyped.id: {"type": "primary"},
    }
    assert body["primary_metrics_ordered_uuids"] == [primary.query["uuid"], untyped.query["uuid"]]
    assert body["secondary_metrics_ordered_uuids"] == [secondary.query["uuid"]]
    by_name = {link["name"]: link for link in body["saved_metrics"]}
    assert set(by_name) == {"Revenue", "Clicks", "Signups"}
    revenue = by_name["Revenue"]
    assert set(revenue) == {"id", "experiment", "saved_metric", "metadata", "created_at", "query", "name"}
    assert revenue["experiment"] == experiment.id
    assert revenue["saved_metric"] == primary.id
    assert revenue["metadata"] == {"type": "primary"}
    assert {key: value for key, value in revenue["query"].items() if key != "fingerprint"} == primary.query
    assert len(revenue["query"]["fingerprint"]) == 64


def test_a_web_experiment_records_the_variants_it_uses(api_client, project):
    response = create(api_client, project, type="web")

    assert response.status_code == 201, response.json()
    assert Experiment.objects.get(pk=response.json()["id"]).variants == {
        "control": {"rollout_percentage": 50},
        "test": {"rollout_percentage": 50},
    }


def test_a_web_experiment_on_a_reused_flag_records_the_flags_variants(api_client, project):
    FeatureFlagFactory(
        project=project,
        key="checkout",
        filters={
            "multivariate": {
                "variants": [{"key": "control", "rollout_percentage": 70}, {"key": "b", "rollout_percentage": 30}]
            }
        },
    )

    response = create(api_client, project, type="web")

    assert response.status_code == 201, response.json()
    assert Experiment.objects.get(pk=response.json()["id"]).variants == {
        "control": {"rollout_percentage": 70},
        "b": {"rollout_percentage": 30},
    }


def test_unknown_event_names_are_refused_naming_them(api_client, project):
    funnel = {
        "kind": "ExperimentMetric",
        "metric_type": "funnel",
        "series": [
            {"kind": "EventsNode", "event": "purchase"},
            {"kind": "EventsNode", "event": "zzz"},
            {"kind": "EventsNode", "event": "never-seen"},
        ],
    }
    response = create(api_client, project, metrics_secondary=[funnel])

    assert response.status_code == 400
    assert response.json() == {
        "type": "validation_error",
        "code": "invalid_input",
        "detail": messages.UNKNOWN_EVENTS.format(events="'never-seen', 'zzz'"),
        "attr": "metrics_secondary",
    }
    assert Experiment.objects.count() == 0
    assert FeatureFlag.objects.count() == 0


def test_unknown_event_names_and_folders_are_accepted_with_allow_unknown_events(api_client, project):
    response = create(
        api_client,
        project,
        metrics=[mean_metric("never-seen")],
        allow_unknown_events=True,
        _create_in_folder="Unfiled/Experiments",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["metrics"][0]["source"] == {"kind": "EventsNode", "event": "never-seen"}


TWENTY_ONE_VARIANTS = [{"key": "control", "rollout_percentage": 100}] + [
    {"key": f"v{index}", "rollout_percentage": 0} for index in range(20)
]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": None}, validation_error("This field may not be null.", "name", "null")),
        (
            {"name": "x" * 401},
            validation_error("Ensure this field has no more than 400 characters.", "name", "max_length"),
        ),
        ({"feature_flag_key": ""}, validation_error("This field may not be blank.", "feature_flag_key", "blank")),
        # Errors of the flag the experiment creates carry the flag's field names (§10.15).
        ({"feature_flag_key": "bad key!"}, validation_error(flag_messages.INVALID_FLAG_KEY, "key", "invalid_key")),
        (
            {
                "parameters": {
                    "feature_flag_variants": [
                        {"key": "control", "rollout_percentage": 50},
                        {"key": "test", "rollout_percentage": 40},
                    ]
                }
            },
            validation_error(flag_messages.VARIANT_SUM_NOT_100, "filters"),
        ),
        ({"parameters": ["control"]}, validation_error(messages.PARAMETERS_NOT_OBJECT, "parameters")),
        (
            {"parameters": {"feature_flag_variants": TWENTY_ONE_VARIANTS}},
            validation_error(messages.TOO_MANY_VARIANTS, "parameters"),
        ),
        (
            {
                "parameters": {
                    "feature_flag_variants": [
                        {"key": "a", "rollout_percentage": 50},
                        {"key": "b", "rollout_percentage": 50},
                    ]
                }
            },
            validation_error(messages.NO_CONTROL_VARIANT, "parameters"),
        ),
        (
            {"parameters": {"feature_flag_variants": [{"key": "control", "rollout_percentage": 100}]}},
            validation_error(messages.ONE_VARIANT, "parameters"),
        ),
        (
            {"parameters": {"feature_flag_variants": "control"}},
            validation_error(messages.VARIANTS_NOT_A_LIST, "parameters"),
        ),
        (
            {"parameters": {"feature_flag_variants": [{"key": "control", "rollout_percentage": 50}, "test"]}},
            validation_error(messages.VARIANT_NOT_OBJECT.format(index=1), "parameters"),
        ),
        (
            {"parameters": {"feature_flag_variants": [{"rollout_percentage": 50}]}},
            validation_error(messages.VARIANT_WITHOUT_KEY.format(index=0), "parameters"),
        ),
        (
            {"parameters": {"feature_flag_variants": [{"key": "control", "rollout_percentage": 50}, {"key": "test"}]}},
            validation_error(messages.VARIANT_WITHOUT_PERCENTAGE.format(index=1), "parameters"),
        ),
        (
            {"parameters": {"rollout_percentage": 101}},
            validation_error(messages.ROLLOUT_PERCENTAGE_INVALID, "parameters"),
        ),
        (
            {"parameters": {"rollout_percentage": "50"}},
            validation_error(messages.ROLLOUT_PERCENTAGE_INVALID, "parameters"),
        ),
        (
            {"exposure_criteria": {"filterTestAccounts": "yes"}},
            validation_error(messages.FILTER_TEST_ACCOUNTS_NOT_BOOLEAN, "exposure_criteria"),
        ),
        ({"exposure_criteria": "all"}, validation_error(messages.INVALID_EXPOSURE_CRITERIA, "exposure_criteria")),
        (
            {"exposure_criteria": {"exposure_config": {"kind": "ExperimentEventExposureConfig"}}},
            validation_error(messages.INVALID_EXPOSURE_CRITERIA, "exposure_criteria"),
        ),
        (
            {"exposure_criteria": {"exposure_config": {"kind": "ActionsNode", "id": "7"}}},
            validation_error(messages.INVALID_EXPOSURE_CRITERIA, "exposure_criteria"),
        ),
        (
            {"exposure_criteria": {"exposure_config": {"kind": "PersonsNode", "event": "$pageview"}}},
            validation_error(messages.INVALID_EXPOSURE_CRITERIA, "exposure_criteria"),
        ),
        (
            {"exposure_criteria": {"multiple_variant_handling": "last_seen"}},
            validation_error(messages.INVALID_MULTIPLE_VARIANT_HANDLING, "exposure_criteria"),
        ),
        # PostHog answers `stats_config: null` with a 500 (§10.16); here it is a plain 400.
        ({"stats_config": None}, validation_error("This field may not be null.", "stats_config", "null")),
        ({"stats_config": ["bayesian"]}, validation_error(messages.STATS_CONFIG_NOT_OBJECT, "stats_config")),
        (
            {"stats_config": {"method": "bootstrap"}},
            validation_error(messages.INVALID_STATS_METHOD.format(method="bootstrap"), "stats_config"),
        ),
        ({"saved_metrics_ids": {"id": 1}}, validation_error(messages.SAVED_METRICS_NOT_LIST, "saved_metrics_ids")),
        ({"saved_metrics_ids": [1]}, validation_error(messages.SAVED_METRIC_NOT_OBJECT, "saved_metrics_ids")),
        (
            {"saved_metrics_ids": [{"metadata": {"type": "primary"}}]},
            validation_error(messages.SAVED_METRIC_WITHOUT_ID, "saved_metrics_ids"),
        ),
        ({"saved_metrics_ids": [{"id": "1"}]}, validation_error(messages.SAVED_METRIC_WITHOUT_ID, "saved_metrics_ids")),
        (
            {"saved_metrics_ids": [{"id": 1, "metadata": "primary"}]},
            validation_error(messages.METADATA_NOT_OBJECT, "saved_metrics_ids"),
        ),
        (
            {"saved_metrics_ids": [{"id": 1, "metadata": {}}]},
            validation_error(messages.SAVED_METRIC_METADATA_WITHOUT_TYPE, "saved_metrics_ids"),
        ),
        (
            {"saved_metrics_ids": [{"id": 987654321}]},
            validation_error(messages.SAVED_METRIC_DOES_NOT_EXIST, "saved_metrics_ids"),
        ),
        (
            {"start_date": "2025-01-10T12:00:00Z", "end_date": "2025-01-09T12:00:00Z"},
            validation_error(messages.END_BEFORE_START),
        ),
        (
            {"start_date": "2025-01-10T12:00:00Z", "end_date": "2025-01-10T12:00:00Z"},
            validation_error(messages.END_BEFORE_START),
        ),
        (
            {"start_date": "next tuesday"},
            validation_error(
                "Datetime has wrong format. Use one of these formats instead: "
                "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
                "start_date",
            ),
        ),
        ({"type": "spaceship"}, validation_error('"spaceship" is not a valid choice.', "type", "invalid_choice")),
        ({"conclusion": "maybe"}, validation_error('"maybe" is not a valid choice.', "conclusion", "invalid_choice")),
        (
            {"holdout_id": 987654321},
            validation_error('Invalid pk "987654321" - object does not exist.', "holdout_id", "does_not_exist"),
        ),
        ({"filters": []}, validation_error(messages.FILTERS_NOT_OBJECT, "filters")),
        ({"metrics": {"kind": "ExperimentMetric"}}, validation_error(messages.METRICS_NOT_A_LIST, "metrics")),
        (
            {"metrics": [mean_metric(), "revenue"]},
            validation_error(messages.INVALID_METRIC_AT_INDEX.format(index=1, problem=messages.NOT_A_DICT), "metrics"),
        ),
        (
            {"metrics": [{"kind": "ExperimentTrendsQuery", "count_query": {}}]},
            validation_error(
                messages.INVALID_METRIC_AT_INDEX.format(
                    index=0, problem=messages.LEGACY_KIND.format(kind="ExperimentTrendsQuery")
                ),
                "metrics",
            ),
        ),
        (
            {"metrics": [{**mean_metric(), "kind": "EventsNode"}]},
            validation_error(messages.INVALID_METRIC_AT_INDEX.format(index=0, problem=messages.WRONG_KIND), "metrics"),
        ),
        (
            {"metrics": [{**mean_metric(), "metric_type": "median"}]},
            validation_error(
                messages.INVALID_METRIC_AT_INDEX.format(index=0, problem=messages.WRONG_METRIC_TYPE), "metrics"
            ),
        ),
        (
            {"metrics": [{"kind": "ExperimentMetric", "metric_type": "mean"}]},
            validation_error(
                messages.INVALID_METRIC_AT_INDEX.format(
                    index=0, problem=messages.MISSING_KEY.format(metric_type="mean", key="source")
                ),
                "metrics",
            ),
        ),
        (
            {"metrics_secondary": [mean_metric(), {"kind": "ExperimentMetric", "metric_type": "funnel", "series": []}]},
            validation_error(
                messages.INVALID_METRIC_AT_INDEX.format(index=1, problem=messages.FUNNEL_WITHOUT_STEPS),
                "metrics_secondary",
            ),
        ),
        (
            {"metrics": [{"kind": "ExperimentMetric", "metric_type": "ratio", "numerator": {"kind": "EventsNode"}}]},
            validation_error(
                messages.INVALID_METRIC_AT_INDEX.format(
                    index=0, problem=messages.MISSING_KEY.format(metric_type="ratio", key="denominator")
                ),
                "metrics",
            ),
        ),
        *[
            (
                {field: [mean_metric(), {**mean_metric(), "prior": prior}]},
                validation_error(messages.INVALID_METRIC_AT_INDEX.format(index=1, problem=problem), field),
            )
            for field, prior, problem in [
                ("metrics", 0.3, messages.PRIOR_NOT_OBJECT.format(path="prior")),
                ("metrics", {"proper": "yes"}, messages.PRIOR_PROPER_NOT_BOOLEAN.format(path="prior")),
                ("metrics_secondary", {"mean": "0"}, messages.PRIOR_MEAN_INVALID.format(path="prior")),
                ("metrics", {"stddev": 0}, messages.PRIOR_STDDEV_INVALID.format(path="prior")),
                ("metrics", {"stddev": -0.3, "proper": True}, messages.PRIOR_STDDEV_INVALID.format(path="prior")),
                ("metrics", {"stddev": 1e200}, messages.PRIOR_STDDEV_INVALID.format(path="prior")),
                ("metrics", {"stddev": 1e-200}, messages.PRIOR_STDDEV_INVALID.format(path="prior")),
                ("metrics", {"mean": 1e300}, messages.PRIOR_MEAN_INVALID.format(path="prior")),
            ]
        ],
    ],
)
def test_bad_input_is_a_400_that_writes_nothing(api_client, project, body, expected):
    response = create(api_client, project, **body)

    assert response.status_code == 400
    assert response.json() == expected
    assert_nothing_written(project)


@pytest.mark.parametrize(
    "custom_exposure_filter",
    ["string", ["list"], {"events": "x"}, {"events": ["x"]}, {"actions": [{"id": 1, "properties": ["p"]}]}],
)
def test_custom_exposure_filter_must_be_an_insight_filter(api_client, project, custom_exposure_filter):
    response = api_client.post(
        f"/api/projects/{project.id}/experiments/",
        {"name": "E", "feature_flag_key": "e", "parameters": {"custom_exposure_filter": custom_exposure_filter}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == validation_error(messages.CUSTOM_EXPOSURE_FILTER_INVALID, "parameters")
    assert Experiment.objects.count() == 0


@pytest.mark.parametrize("missing", ["name", "feature_flag_key"])
def test_name_and_flag_key_are_required(api_client, project, missing):
    body = {"name": "Checkout", "feature_flag_key": "checkout"}
    del body[missing]

    response = api_client.post(experiments_url(project), body, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error("This field is required.", missing, "required")
    assert_nothing_written(project)


def test_a_saved_metric_of_another_project_does_not_exist_here(api_client, project):
    foreign = SavedMetricFactory()

    response = create(api_client, project, saved_metrics_ids=[{"id": foreign.id}])

    assert response.status_code == 400
    assert response.json() == validation_error(messages.SAVED_METRIC_DOES_NOT_EXIST, "saved_metrics_ids")
    assert_nothing_written(project)


def test_a_holdout_of_another_project_does_not_exist_here(api_client, project):
    foreign = HoldoutFactory()

    response = create(api_client, project, holdout_id=foreign.id)

    assert response.status_code == 400
    assert response.json() == validation_error(
        f'Invalid pk "{foreign.id}" - object does not exist.', "holdout_id", "does_not_exist"
    )
    assert_nothing_written(project)


@pytest.mark.parametrize("same_saved_metric", [True, False])
def test_a_late_failure_leaves_no_flag_behind(api_client, project, same_saved_metric):
    """Duplicate saved-metric uuids are found after the flag is created; the whole create is rolled back."""
    first = SavedMetricFactory(project=project)
    second = first if same_saved_metric else SavedMetricFactory(project=project, query={**first.query})

    response = create(
        api_client,
        project,
        start_date="2025-01-10T12:00:00Z",
        saved_metrics_ids=[{"id": first.id}, {"id": second.id, "metadata": {"type": "primary"}}],
    )

    assert response.status_code == 400
    assert response.json() == validation_error(messages.DUPLICATE_METRIC_UUID.format(uuid=first.query["uuid"]))
    assert_nothing_written(project)


def test_a_read_only_key_cannot_create(make_client, user, project):
    client = make_client(user, scopes=["experiment:read"])

    response = create(client, project)

    assert response.status_code == 403
    assert response.json() == missing_scope("experiment:write")
    assert_nothing_written(project)


def test_a_write_key_can_create(make_client, user, project):
    response = create(make_client(user, scopes=["experiment:write"]), project)

    assert response.status_code == 201, response.json()


def test_creating_without_credentials_is_a_401(project):
    response = create(APIClient(), project)

    assert response.status_code == 401
    assert response.json() == error_body(
        type="authentication_error",
        code="not_authenticated",
        detail="Authentication credentials were not provided.",
    )
    assert_nothing_written(project)


def test_a_user_of_another_organization_cannot_create_here(make_client, project):
    outsider = member_of(ProjectFactory())

    response = create(make_client(outsider), project)

    assert response.status_code == 403
    assert response.json() == NOT_A_MEMBER
    assert_nothing_written(project)


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_the_same_new_key_make_one_flag(make_client):
    """Both requests find no flag with the key and try to create it; the database lets exactly one win, and the
    other reuses the winner's flag, as it would had it come second.

    The test holds a lock on the experiments table, so the first request waits (with its new flag not yet
    committed) while the second waits on that flag's key; releasing the lock lets them finish.
    """
    project = ProjectFactory()
    clients = [make_client(member_of(project, UserFactory(current_project=project))) for _ in range(2)]
    responses = []

    def post(client):
        try:
            responses.append(create(client, project))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(client,)) for client in clients]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {Experiment._meta.db_table} IN EXCLUSIVE MODE")
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while _waiting_on_locks() < 2:
            assert time.monotonic() < deadline, "the two requests never both reached the database"
            time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=30)

    assert [response.status_code for response in responses] == [201, 201]
    flag = FeatureFlag.objects.get(project=project, key="checkout")
    assert {response.json()["feature_flag"]["id"] for response in responses} == {flag.pk}
    assert list(Experiment.objects.filter(project=project).values_list("feature_flag", flat=True)) == [flag.pk] * 2
