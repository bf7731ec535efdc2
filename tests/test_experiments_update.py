"""PATCH/PUT /experiments/:id/ (§4.4): allowed keys, launch and stop, flag sync, soft delete, saved metrics,
ordering arrays; and DELETE, which answers 405 (§4.6)."""

import pytest
from rest_framework.test import APIClient

from experiments import messages
from experiments.models import Experiment
from flags import messages as flag_messages
from flags.models import FeatureFlag
from tests.factories import (
    ExperimentFactory,
    HoldoutFactory,
    ProjectFactory,
    SavedMetricFactory,
    mean_metric,
    member_of,
)
from tests.helpers import NOT_A_MEMBER, NOT_FOUND, missing_scope, validation_error

DEFAULT_VARIANTS = [
    {"key": "control", "name": "Control Group", "rollout_percentage": 50},
    {"key": "test", "name": "Test Variant", "rollout_percentage": 50},
]
THREE_VARIANTS = [
    {"key": "control", "rollout_percentage": 40},
    {"key": "red", "rollout_percentage": 30},
    {"key": "blue", "rollout_percentage": 30},
]


def experiments_url(project) -> str:
    return f"/api/projects/{project.id}/experiments/"


def experiment_url(project, experiment_id) -> str:
    return f"{experiments_url(project)}{experiment_id}/"


def create(client, project, **body) -> dict:
    response = client.post(
        experiments_url(project), {"name": "Checkout", "feature_flag_key": "checkout", **body}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def patch(client, project, experiment_id, body):
    return client.patch(experiment_url(project, experiment_id), body, format="json")


def flag_of(experiment: dict) -> FeatureFlag:
    return FeatureFlag.objects.get(pk=experiment["feature_flag"]["id"])


def stored(experiment: dict) -> Experiment:
    return Experiment.objects.get(pk=experiment["id"])


def test_patch_changes_only_the_fields_sent(api_client, project):
    experiment = create(api_client, project, description="Before")

    response = patch(api_client, project, experiment["id"], {"name": "Renamed", "conclusion": "won"})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["name"] == "Renamed"
    assert body["conclusion"] == "won"
    assert body["description"] == "Before"
    assert body["feature_flag_key"] == "checkout"
    assert stored(experiment).name == "Renamed"


def test_the_url_works_without_a_trailing_slash(api_client, project):
    experiment = create(api_client, project)

    response = api_client.patch(experiment_url(project, experiment["id"]).rstrip("/"), {"name": "x"}, format="json")

    assert response.status_code == 200, response.json()


def test_put_needs_the_name_and_the_flag_key(api_client, project):
    experiment = create(api_client, project)

    response = api_client.put(experiment_url(project, experiment["id"]), {"name": "Renamed"}, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error("This field is required.", "feature_flag_key", "required")
    assert stored(experiment).name == "Checkout"


def test_put_of_a_fetched_experiment_with_changes_is_accepted(api_client, project):
    """Clients fetch, edit and PUT the whole object; read-only fields in the body are ignored, as in PostHog."""
    experiment = create(api_client, project, metrics=[mean_metric()], saved_metrics_ids=[])
    fetched = api_client.get(experiment_url(project, experiment["id"])).json()
    del fetched["type"]  # `type` can never be updated, even to its current value (§4.4.1)

    response = api_client.put(
        experiment_url(project, experiment["id"]), {**fetched, "description": "Edited"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["description"] == "Edited"
    assert response.json()["metrics"] == fetched["metrics"]


@pytest.mark.parametrize(
    ("body", "keys"),
    [
        # A changed flag key is reported under PostHog's internal field name (§10.4).
        ({"feature_flag_key": "other"}, "get_feature_flag_key"),
        ({"type": "web"}, "type"),
        ({"_create_in_folder": "Unfiled"}, "_create_in_folder"),
        ({"type": "web", "feature_flag_key": "other", "name": "Renamed"}, "get_feature_flag_key, type"),
    ],
)
def test_keys_that_cannot_change_are_refused(api_client, project, body, keys):
    experiment = create(api_client, project)

    response = patch(api_client, project, experiment["id"], body)

    assert response.status_code == 400
    assert response.json() == validation_error(messages.CANT_UPDATE_KEYS.format(keys=keys))
    assert stored(experiment).name == "Checkout"
    assert stored(experiment).type == "product"


def test_read_only_and_unknown_keys_are_ignored(api_client, project):
    experiment = create(api_client, project)

    response = patch(
        api_client,
        project,
        experiment["id"],
        {"name": "Renamed", "id": 1, "status": "running", "created_by": None, "no_such_field": True},
    )

    assert response.status_code == 200, response.json()
    assert response.json()["id"] == experiment["id"]
    assert response.json()["status"] == "draft"
    assert response.json()["name"] == "Renamed"


def test_sending_the_current_flag_key_is_fine(api_client, project):
    experiment = create(api_client, project)

    response = patch(api_client, project, experiment["id"], {"feature_flag_key": "checkout", "name": "Renamed"})

    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Renamed"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"start_date": "2025-01-10T12:00:00Z", "end_date": "2025-01-01T12:00:00Z"},
            validation_error(messages.END_BEFORE_START),
        ),
        (
            {"filters": {"properties": [{"key": "$browser", "value": "Chrome"}]}},
            validation_error(messages.GLOBAL_FILTER_PROPERTIES),
        ),
        (
            {"stats_config": {"method": "x"}},
            validation_error(messages.INVALID_STATS_METHOD.format(method="x"), "stats_config"),
        ),
        (
            {"parameters": {"feature_flag_variants": [{"key": "control", "rollout_percentage": 100}]}},
            validation_error(messages.ONE_VARIANT, "parameters"),
        ),
        (
            {
                "parameters": {
                    "feature_flag_variants": [
                        {"key": "control", "rollout_percentage": 60},
                        {"key": "test", "rollout_percentage": 60},
                    ]
                }
            },
            validation_error(flag_messages.VARIANT_SUM_NOT_100, "filters"),
        ),
        (
            {"metrics": [{"kind": "ExperimentMetric", "metric_type": "funnel", "series": []}]},
            validation_error(
                messages.INVALID_METRIC_AT_INDEX.format(index=0, problem=messages.FUNNEL_WITHOUT_STEPS), "metrics"
            ),
        ),
        (
            {"metrics_secondary": "all of them"},
            validation_error(messages.METRICS_NOT_A_LIST, "metrics_secondary"),
        ),
        (
            {"primary_metrics_ordered_uuids": ["a", 1]},
            validation_error(
                messages.ORDERING_NOT_LIST.format(field="primary_metrics_ordered_uuids"),
                "primary_metrics_ordered_uuids",
            ),
        ),
        (
            {"holdout_id": 987654321},
            validation_error('Invalid pk "987654321" - object does not exist.', "holdout_id", "does_not_exist"),
        ),
        ({"conclusion": "maybe"}, validation_error('"maybe" is not a valid choice.', "conclusion", "invalid_choice")),
        (
            {"saved_metrics_ids": [{"id": 987654321}]},
            validation_error(messages.SAVED_METRIC_DOES_NOT_EXIST, "saved_metrics_ids"),
        ),
    ],
)
def test_bad_input_is_a_400_that_changes_nothing(api_client, project, body, expected):
    experiment = create(api_client, project)
    flag_filters = flag_of(experiment).filters

    response = patch(api_client, project, experiment["id"], {"name": "Renamed", **body})

    assert response.status_code == 400
    assert response.json() == expected
    assert stored(experiment).name == "Checkout"
    assert stored(experiment).parameters == {}
    assert flag_of(experiment).filters == flag_filters


def test_a_json_body_that_is_not_an_object_is_a_400(api_client, project):
    experiment = create(api_client, project)

    response = patch(api_client, project, experiment["id"], ["name", "Renamed"])

    assert response.status_code == 400
    assert response.json() == validation_error("Invalid data. Expected a dictionary, but got list.")


def test_end_date_alone_is_not_checked_against_the_stored_start_date(api_client, project):
    """PostHog compares the dates only when both are in the payload; we keep that."""
    experiment = create(api_client, project, start_date="2025-01-10T12:00:00Z")

    response = patch(api_client, project, experiment["id"], {"end_date": "2025-01-01T00:00:00Z"})

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "stopped"


def test_launching_through_start_date_activates_the_flag(api_client, project):
    experiment = create(api_client, project, metrics=[mean_metric()])
    draft_fingerprint = experiment["metrics"][0]["fingerprint"]
    assert flag_of(experiment).active is False

    response = patch(api_client, project, experiment["id"], {"start_date": "2025-01-10T12:00:00Z"})

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "running"
    assert response.json()["feature_flag"]["active"] is True
    assert flag_of(experiment).active is True
    # Launching changes every fingerprint, orphaning results computed for the draft (§10.9, kept).
    assert response.json()["metrics"][0]["fingerprint"] != draft_fingerprint


def test_launching_an_experiment_whose_flag_was_deleted_is_refused(api_client, project):
    experiment = create(api_client, project)
    FeatureFlag.objects.filter(pk=experiment["feature_flag"]["id"]).update(deleted=True)

    response = patch(api_client, project, experiment["id"], {"start_date": "2025-01-10T12:00:00Z"})

    assert response.status_code == 400
    assert response.json() == validation_error(messages.LAUNCH_WITH_DELETED_FLAG)
    assert stored(experiment).start_date is None


def test_stopping_through_end_date_leaves_the_flag_alone(api_client, project):
    experiment = create(api_client, project, start_date="2025-01-10T12:00:00Z")
    flag_version = flag_of(experiment).version

    response = patch(api_client, project, experiment["id"], {"end_date": "2025-01-20T12:00:00Z"})

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "stopped"
    flag = flag_of(experiment)
    assert flag.active is True
    assert flag.version == flag_version


def test_start_date_null_returns_to_draft_without_touching_the_flag(api_client, project):
    experiment = create(api_client, project, start_date="2025-01-10T12:00:00Z")

    response = patch(api_client, project, experiment["id"], {"start_date": None})

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "draft"
    assert flag_of(experiment).active is True


def test_every_update_recomputes_the_fingerprints(api_client, project):
    experiment = create(api_client, project, metrics=[mean_metric()])
    before = experiment["metrics"][0]["fingerprint"]

    changed = patch(api_client, project, experiment["id"], {"stats_config": {"method": "frequentist"}}).json()
    unchanged = patch(api_client, project, experiment["id"], {"name": "Renamed"}).json()

    assert changed["metrics"][0]["fingerprint"] != before
    assert unchanged["metrics"][0]["fingerprint"] == changed["metrics"][0]["fingerprint"]
    assert stored(experiment).metrics[0]["fingerprint"] == changed["metrics"][0]["fingerprint"]


def test_patching_parameters_on_a_draft_rewrites_the_flag(api_client, project):
    experiment = create(api_client, project, parameters={"rollout_percentage": 80})
    holdout = HoldoutFactory(project=project)
    patch(api_client, project, experiment["id"], {"holdout_id": holdout.id})

    response = patch(
        api_client,
        project,
        experiment["id"],
        {
            "parameters": {
                "feature_flag_variants": THREE_VARIANTS,
                "aggregation_group_type_index": 0,
                "rollout_percentage": 25,
            }
        },
    )

    assert response.status_code == 200, response.json()
    flag = flag_of(experiment)
    assert flag.filters == {
        "groups": [{"properties": [], "rollout_percentage": 25}],
        "multivariate": {"variants": THREE_VARIANTS},
        "aggregation_group_type_index": 0,
        "holdout_groups": holdout.filters,
    }
    assert response.json()["feature_flag"]["filters"] == flag.filters


def test_patching_parameters_without_variants_resets_a_draft_flag_to_50_50(api_client, project):
    """PostHog's surprising rule (§10.3), kept: the variants default back to control/test."""
    experiment = create(api_client, project, parameters={"feature_flag_variants": THREE_VARIANTS})

    response = patch(api_client, project, experiment["id"], {"parameters": {"minimum_detectable_effect": 3}})

    assert response.status_code == 200, response.json()
    assert flag_of(experiment).filters["multivariate"] == {"variants": DEFAULT_VARIANTS}


def test_patching_the_holdout_alone_updates_only_the_flags_holdout(api_client, project):
    experiment = create(api_client, project, parameters={"feature_flag_variants": THREE_VARIANTS})
    holdout = HoldoutFactory(project=project)

    response = patch(api_client, project, experiment["id"], {"holdout_id": holdout.id})

    assert response.status_code == 200, response.json()
    assert response.json()["holdout"]["id"] == holdout.id
    flag = flag_of(experiment)
    assert flag.filters["holdout_groups"] == holdout.filters
    assert flag.filters["multivariate"] == {"variants": THREE_VARIANTS}

    response = patch(api_client, project, experiment["id"], {"holdout_id": None})

    assert response.status_code == 200, response.json()
    assert flag_of(experiment).filters["holdout_groups"] is None


@pytest.mark.parametrize(
    "variants",
    [
        THREE_VARIANTS,
        [{"key": "control", "rollout_percentage": 50}, {"key": "other", "rollout_percentage": 50}],
    ],
)
def test_variants_cannot_change_once_launched(api_client, project, variants):
    experiment = create(api_client, project, start_date="2025-01-10T12:00:00Z")

    response = patch(api_client, project, experiment["id"], {"parameters": {"feature_flag_variants": variants}})

    assert response.status_code == 400
    assert response.json() == validation_error(messages.CANT_UPDATE_VARIANTS)
    assert flag_of(experiment).filters["multivariate"] == {"variants": DEFAULT_VARIANTS}
    assert stored(experiment).parameters == {}


def test_new_percentages_for_the_same_variants_of_a_running_experiment_are_stored_not_synced(api_client, project):
    experiment = create(api_client, project, start_date="2025-01-10T12:00:00Z")
    variants = [{"key": "test", "rollout_percentage": 20}, {"key": "control", "rollout_percentage": 80}]

    response = patch(api_client, project, experiment["id"], {"parameters": {"feature_flag_variants": variants}})

    assert response.status_code == 200, response.json()
    assert stored(experiment).parameters == {"feature_flag_variants": variants}
    assert flag_of(experiment).filters["multivariate"] == {"variants": DEFAULT_VARIANTS}


def test_update_feature_flag_params_syncs_a_running_experiments_flag(api_client, project):
    experiment = create(api_client, project, start_date="2025-01-10T12:00:00Z")
    variants = [{"key": "control", "rollout_percentage": 80}, {"key": "test", "rollout_percentage": 20}]

    response = patch(
        api_client,
        project,
        experiment["id"],
        {"parameters": {"feature_flag_variants": variants}, "update_feature_flag_params": True},
    )

    assert response.status_code == 200, response.json()
    assert flag_of(experiment).filters["multivariate"] == {"variants": variants}
    assert flag_of(experiment).active is True


def test_the_holdout_cannot_change_once_launched(api_client, project):
    holdout = HoldoutFactory(project=project)
    experiment = create(api_client, project, holdout_id=holdout.id, start_date="2025-01-10T12:00:00Z")

    for new_holdout in (HoldoutFactory(project=project).id, None):
        response = patch(api_client, project, experiment["id"], {"holdout_id": new_holdout})

        assert response.status_code == 400
        assert response.json() == validation_error(messages.CANT_UPDATE_HOLDOUT)
        assert stored(experiment).holdout_id == holdout.id

    assert patch(api_client, project, experiment["id"], {"holdout_id": holdout.id}).status_code == 200


def test_soft_delete_hides_the_experiment_and_restore_brings_it_back(api_client, project):
    experiment = create(api_client, project)
    url = experiment_url(project, experiment["id"])

    deleted = patch(api_client, project, experiment["id"], {"deleted": True})

    assert deleted.status_code == 200, deleted.json()
    assert deleted.json()["deleted"] is True
    assert api_client.get(url).status_code == 404
    assert api_client.get(experiments_url(project)).json()["count"] == 0
    assert patch(api_client, project, experiment["id"], {"name": "Renamed"}).json() == NOT_FOUND
    # The flag is not deleted with the experiment.
    assert flag_of(experiment).deleted is False

    restored = patch(api_client, project, experiment["id"], {"deleted": False, "name": "Restored"})

    assert restored.status_code == 200, restored.json()
    assert restored.json()["deleted"] is False
    assert api_client.get(url).json()["name"] == "Restored"


def test_restoring_with_a_deleted_flag_is_refused(api_client, project):
    experiment = create(api_client, project)
    patch(api_client, project, experiment["id"], {"deleted": True})
    FeatureFlag.objects.filter(pk=experiment["feature_flag"]["id"]).update(deleted=True)

    response = patch(api_client, project, experiment["id"], {"deleted": False})

    assert response.status_code == 400
    assert response.json() == validation_error(messages.RESTORE_WITH_DELETED_FLAG.format(key="checkout"))
    assert stored(experiment).deleted is True


def test_archiving_is_a_plain_field(api_client, project):
    experiment = create(api_client, project)

    response = patch(api_client, project, experiment["id"], {"archived": True})

    assert response.status_code == 200, response.json()
    assert response.json()["archived"] is True
    assert api_client.get(experiment_url(project, experiment["id"])).status_code == 200


def test_saved_metric_links_are_diffed_and_the_orderings_follow(api_client, project):
    kept, moved, removed, added = (SavedMetricFactory(project=project) for _ in range(4))
    experiment = create(
        api_client,
        project,
        metrics=[mean_metric(uuid="inline")],
        saved_metrics_ids=[
            {"id": kept.id, "metadata": {"type": "primary"}},
            {"id": moved.id, "metadata": {"type": "secondary"}},
            {"id": removed.id, "metadata": {"type": "primary"}},
        ],
    )
    link_ids = {link["saved_metric"]: link["id"] for link in experiment["saved_metrics"]}
    uuid_of = {metric: metric.query["uuid"] for metric in (kept, moved, removed, added)}
    assert experiment["primary_metrics_ordered_uuids"] == ["inline", uuid_of[kept], uuid_of[removed]]
    assert experiment["secondary_metrics_ordered_uuids"] == [uuid_of[moved]]

    response = patch(
        api_client,
        project,
        experiment["id"],
        {
            "saved_metrics_ids": [
                {"id": kept.id, "metadata": {"type": "primary"}},
                {"id": moved.id, "metadata": {"type": "primary", "breakdowns": [{"property": "$os"}]}},
                {"id": added.id, "metadata": {"type": "secondary"}},
            ]
        },
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    links = {link["saved_metric"]: link for link in body["saved_metrics"]}
    assert set(links) == {kept.id, moved.id, added.id}
    # Kept links are updated in place, not deleted and recreated.
    assert links[kept.id]["id"] == link_ids[kept.id]
    assert links[moved.id]["id"] == link_ids[moved.id]
    assert links[moved.id]["metadata"] == {"type": "primary", "breakdowns": [{"property": "$os"}]}
    assert body["primary_metrics_ordered_uuids"] == ["inline", uuid_of[kept], uuid_of[moved]]
    assert body["secondary_metrics_ordered_uuids"] == [uuid_of[added]]


def test_saved_metrics_ids_null_removes_every_link(api_client, project):
    saved = SavedMetricFactory(project=project)
    experiment = create(api_client, project, saved_metrics_ids=[{"id": saved.id}])

    response = patch(api_client, project, experiment["id"], {"saved_metrics_ids": None})

    assert response.status_code == 200, response.json()
    assert response.json()["saved_metrics"] == []
    assert response.json()["primary_metrics_ordered_uuids"] == []
    assert not stored(experiment).saved_metric_links.exists()


def test_a_saved_metric_of_another_project_cannot_be_linked(api_client, project):
    experiment = create(api_client, project)

    response = patch(api_client, project, experiment["id"], {"saved_metrics_ids": [{"id": SavedMetricFactory().id}]})

    assert response.status_code == 400
    assert response.json() == validation_error(messages.SAVED_METRIC_DOES_NOT_EXIST, "saved_metrics_ids")
    assert not stored(experiment).saved_metric_links.exists()


def test_inline_metric_changes_update_the_stored_ordering(api_client, project):
    experiment = create(
        api_client,
        project,
        metrics=[mean_metric(uuid="a"), mean_metric(uuid="b")],
        metrics_secondary=[mean_metric(uuid="s")],
        primary_metrics_ordered_uuids=["b", "a"],
    )

    response = patch(api_client, project, experiment["id"], {"metrics": [mean_metric(uuid="b"), mean_metric(uuid="c")]})

    assert response.status_code == 200, response.json()
    assert response.json()["primary_metrics_ordered_uuids"] == ["b", "c"]
    assert response.json()["secondary_metrics_ordered_uuids"] == ["s"]


def test_a_sent_ordering_is_the_starting_point_of_the_sync(api_client, project):
    experiment = create(api_client, project, metrics=[mean_metric(uuid="a"), mean_metric(uuid="b")])

    response = patch(
        api_client,
        project,
        experiment["id"],
        {
            "metrics": [mean_metric(uuid="a"), mean_metric(uuid="b"), mean_metric(uuid="c")],
            "primary_metrics_ordered_uuids": ["b", "a"],
        },
    )

    assert response.status_code == 200, response.json()
    assert response.json()["primary_metrics_ordered_uuids"] == ["b", "a", "c"]


def test_a_reordering_alone_is_kept(api_client, project):
    experiment = create(api_client, project, metrics=[mean_metric(uuid="a"), mean_metric(uuid="b")])

    response = patch(api_client, project, experiment["id"], {"primary_metrics_ordered_uuids": ["b", "a", "extra"]})

    assert response.status_code == 200, response.json()
    assert response.json()["primary_metrics_ordered_uuids"] == ["b", "a", "extra"]


@pytest.mark.parametrize(
    ("field", "kind", "body"),
    [
        ("primary_metrics_ordered_uuids", "primary", {"metrics": [mean_metric(uuid="a"), mean_metric(uuid="b")]}),
        (
            "secondary_metrics_ordered_uuids",
            "secondary",
            {"metrics_secondary": [mean_metric(uuid="a"), mean_metric(uuid="b")]},
        ),
    ],
)
def test_an_ordering_that_lost_metrics_is_refused(api_client, project, field, kind, body):
    experiment = create(api_client, project, **body)
    ordering = getattr(stored(experiment), field)

    null = patch(api_client, project, experiment["id"], {field: None})
    incomplete = patch(api_client, project, experiment["id"], {field: ["a", "zzz"]})

    assert null.status_code == 400
    assert null.json() == validation_error(messages.ORDERING_NULL.format(field=field, kind=kind))
    assert incomplete.status_code == 400
    assert incomplete.json() == validation_error(messages.ORDERING_MISSING.format(field=field, missing=["b"]))
    assert getattr(stored(experiment), field) == ordering


def test_a_read_only_key_cannot_update(make_client, user, project, api_client):
    experiment = create(api_client, project)
    client = make_client(user, scopes=["experiment:read"])

    for method in (client.patch, client.put):
        response = method(
            experiment_url(project, experiment["id"]),
            {"name": "Renamed", "feature_flag_key": "checkout"},
            format="json",
        )

        assert response.status_code == 403
        assert response.json() == missing_scope("experiment:write")
    assert stored(experiment).name == "Checkout"


def test_a_user_of_another_organization_cannot_read_or_update(make_client, api_client, project):
    experiment = create(api_client, project)
    outsider = make_client(member_of(ProjectFactory()))

    responses = [
        outsider.get(experiment_url(project, experiment["id"])),
        outsider.patch(experiment_url(project, experiment["id"]), {"name": "Mine"}, format="json"),
        outsider.put(
            experiment_url(project, experiment["id"]), {"name": "Mine", "feature_flag_key": "checkout"}, format="json"
        ),
        outsider.patch(experiment_url(project, experiment["id"]), {"deleted": True}, format="json"),
    ]

    for response in responses:
        assert response.status_code == 403
        assert response.json() == NOT_A_MEMBER
    assert stored(experiment).name == "Checkout"
    assert stored(experiment).deleted is False


def test_an_experiment_is_not_reachable_through_another_project(make_client, api_client, project, user):
    experiment = create(api_client, project)
    other_project = ProjectFactory(organization=project.organization)
    member_of(other_project, user)

    for response in (
        api_client.get(experiment_url(other_project, experiment["id"])),
        patch(api_client, other_project, experiment["id"], {"name": "Moved"}),
        patch(api_client, other_project, experiment["id"], {"deleted": False, "name": "Moved"}),
    ):
        assert response.status_code == 404
        assert response.json() == NOT_FOUND
    assert stored(experiment).name == "Checkout"


def test_delete_answers_405_with_an_empty_body(api_client, project):
    experiment = ExperimentFactory(project=project)

    for experiment_id in (experiment.id, 987654321):
        response = api_client.delete(experiment_url(project, experiment_id))

        assert response.status_code == 405
        assert response.content == b""
    assert Experiment.objects.filter(pk=experiment.pk, deleted=False).exists()


def test_delete_checks_credentials_scope_and_membership_first(make_client, user, project):
    experiment = ExperimentFactory(project=project)
    url = experiment_url(project, experiment.id)
    unknown_url = experiment_url(project, 987654321)

    unauthenticated = APIClient().delete(unknown_url)
    read_only = make_client(user, scopes=["experiment:read"]).delete(unknown_url)
    outsider = make_client(member_of(ProjectFactory())).delete(url)

    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["code"] == "not_authenticated"
    assert read_only.status_code == 403
    assert read_only.json() == missing_scope("experiment:write")
    assert outsider.status_code == 403
    assert outsider.json() == NOT_A_MEMBER
    assert make_client(user, scopes=["experiment:write"]).delete(unknown_url).status_code == 405
    assert Experiment.objects.filter(pk=experiment.pk).exists()
