"""POST /experiments/:id/duplicate/ (§4.7): naming, the shared or new flag, what is copied and what is reset."""

import pytest

from experiments import messages
from experiments.models import Experiment
from flags import messages as flag_messages
from flags.models import FeatureFlag
from tests.factories import (
    ExperimentFactory,
    FeatureFlagFactory,
    HoldoutFactory,
    ProjectFactory,
    SavedMetricFactory,
    mean_metric,
    member_of,
)
from tests.helpers import NOT_A_MEMBER, NOT_FOUND, missing_scope, validation_error

THREE_VARIANTS = [
    {"key": "control", "rollout_percentage": 40},
    {"key": "red", "rollout_percentage": 30},
    {"key": "blue", "rollout_percentage": 30},
]


def experiments_url(project) -> str:
    return f"/api/projects/{project.id}/experiments/"


def duplicate_url(project, experiment_id) -> str:
    return f"{experiments_url(project)}{experiment_id}/duplicate/"


def duplicate(client, project, experiment_id, **body):
    return client.post(duplicate_url(project, experiment_id), body, format="json")


@pytest.fixture
def source(api_client, project) -> dict:
    """A launched, concluded, archived experiment with everything a copy can carry."""
    saved_primary = SavedMetricFactory(project=project)
    saved_secondary = SavedMetricFactory(project=project)
    response = api_client.post(
        experiments_url(project),
        {
            "name": "Checkout",
            "feature_flag_key": "checkout",
            "description": "Does the new button sell more?",
            "type": "web",
            "start_date": "2025-01-10T12:00:00Z",
            "end_date": "2025-01-20T12:00:00Z",
            "holdout_id": HoldoutFactory(project=project).id,
            "parameters": {"feature_flag_variants": THREE_VARIANTS, "minimum_detectable_effect": 5},
            "filters": {"events": []},
            "metrics": [mean_metric(uuid="a"), mean_metric("purchase", uuid="b")],
            "metrics_secondary": [mean_metric("click", uuid="s")],
            "primary_metrics_ordered_uuids": ["b", saved_primary.query["uuid"], "a"],
            "stats_config": {"method": "frequentist"},
            "exposure_criteria": {"filterTestAccounts": True},
            "scheduling_config": {"timeseries": True},
            "only_count_matured_users": True,
            "conclusion": "won",
            "conclusion_comment": "Ship it",
            "archived": True,
            "saved_metrics_ids": [
                {"id": saved_primary.id, "metadata": {"type": "primary"}},
                {"id": saved_secondary.id, "metadata": {"type": "secondary", "breakdowns": [{"property": "$os"}]}},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_copy_is_a_draft_sharing_the_flag(api_client, project, source, user):
    response = duplicate(api_client, project, source["id"])

    assert response.status_code == 201, response.json()
    copy = response.json()
    assert copy["id"] != source["id"]
    assert copy["name"] == "Checkout (Copy)"
    # Without a new key the copy links the same flag (§10.1, kept): it is neither copied nor changed.
    assert copy["feature_flag"]["id"] == source["feature_flag"]["id"]
    assert FeatureFlag.objects.filter(project=project).count() == 1
    assert FeatureFlag.objects.get(project=project).active is True
    for field in (
        "description",
        "type",
        "parameters",
        "filters",
        "stats_config",
        "exposure_criteria",
        "scheduling_config",
        "only_count_matured_users",
    ):
        assert copy[field] == source[field], field
    assert copy["start_date"] is None
    assert copy["end_date"] is None
    assert copy["status"] == "draft"
    assert copy["archived"] is False
    assert copy["deleted"] is False
    assert copy["conclusion"] is None
    assert copy["conclusion_comment"] is None
    assert copy["holdout"] is None
    assert copy["exposure_cohort"] is None
    assert copy["created_by"]["id"] == user.id
    assert Experiment.objects.get(pk=copy["id"]).variants == Experiment.objects.get(pk=source["id"]).variants


def _without(metric: dict, *keys: str) -> dict:
    return {key: value for key, value in metric.items() if key not in keys}


def test_a_copy_has_fresh_metric_uuids_with_the_ordering_remapped(api_client, project, source):
    copy = duplicate(api_client, project, source["id"]).json()

    old_metrics = source["metrics"] + source["metrics_secondary"]
    new_metrics = copy["metrics"] + copy["metrics_secondary"]
    new_uuid = {old["uuid"]: new["uuid"] for old, new in zip(old_metrics, new_metrics, strict=True)}
    assert set(new_uuid) == {"a", "b", "s"}
    assert len(set(new_uuid.values()) - {"a", "b", "s"}) == 3
    assert [_without(metric, "uuid", "fingerprint") for metric in new_metrics] == [
        _without(metric, "uuid", "fingerprint") for metric in old_metrics
    ]
    # The copy is a draft, so its fingerprints are the draft ones.
    assert new_metrics[0]["fingerprint"] != old_metrics[0]["fingerprint"]
    # Saved-metric uuids stay in the orderings: the copy links the same saved metrics, with the same metadata.
    saved_uuid = {link["metadata"]["type"]: link["query"]["uuid"] for link in source["saved_metrics"]}
    assert source["primary_metrics_ordered_uuids"] == ["b", saved_uuid["primary"], "a"]
    assert source["secondary_metrics_ordered_uuids"] == ["s", saved_uuid["secondary"]]
    assert copy["primary_metrics_ordered_uuids"] == [new_uuid["b"], saved_uuid["primary"], new_uuid["a"]]
    assert copy["secondary_metrics_ordered_uuids"] == [new_uuid["s"], saved_uuid["secondary"]]
    assert sorted((link["saved_metric"], link["metadata"]["type"]) for link in copy["saved_metrics"]) == sorted(
        (link["saved_metric"], link["metadata"]["type"]) for link in source["saved_metrics"]
    )
    assert [link["metadata"] for link in copy["saved_metrics"] if link["metadata"]["type"] == "secondary"] == [
        {"type": "secondary", "breakdowns": [{"property": "$os"}]}
    ]


def test_copy_names_count_up_past_taken_ones(api_client, project, source):
    ExperimentFactory(project=project, name="Checkout (Copy) 1")
    ExperimentFactory(project=project, name="Checkout (Copy) 3")
    ExperimentFactory(project=project, name="Checkout (Copy) 2", deleted=True)
    ExperimentFactory(name="Checkout (Copy) 2")

    names = [duplicate(api_client, project, source["id"]).json()["name"] for _ in range(3)]

    assert names == ["Checkout (Copy)", "Checkout (Copy) 2", "Checkout (Copy) 4"]


def test_an_explicit_name_wins(api_client, project, source):
    response = duplicate(api_client, project, source["id"], name="Checkout, again")

    assert response.status_code == 201, response.json()
    assert response.json()["name"] == "Checkout, again"


def test_a_new_flag_key_creates_an_inactive_flag_with_the_copied_variants(api_client, project, source):
    response = duplicate(api_client, project, source["id"], feature_flag_key="checkout-2")

    assert response.status_code == 201, response.json()
    flag = FeatureFlag.objects.get(project=project, key="checkout-2")
    assert response.json()["feature_flag"]["id"] == flag.id
    assert flag.active is False
    assert flag.name == "Feature Flag for Experiment Checkout (Copy)"
    assert flag.filters["multivariate"] == {"variants": THREE_VARIANTS}
    assert flag.filters["holdout_groups"] is None


def test_an_existing_flag_key_brings_that_flags_variants(api_client, project, source):
    variants = [{"key": "control", "rollout_percentage": 90}, {"key": "treatment", "rollout_percentage": 10}]
    flag = FeatureFlagFactory(project=project, key="existing", filters={"multivariate": {"variants": variants}})

    response = duplicate(api_client, project, source["id"], feature_flag_key="existing")

    assert response.status_code == 201, response.json()
    copy = response.json()
    assert copy["feature_flag"]["id"] == flag.id
    assert copy["parameters"]["feature_flag_variants"] == [
        {**variant, "split_percent": variant["rollout_percentage"]} for variant in variants
    ]
    assert copy["parameters"]["minimum_detectable_effect"] == 5


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"feature_flag_key": "bad key!"}, validation_error(flag_messages.INVALID_FLAG_KEY, "key", "invalid_key")),
        ({"feature_flag_key": ""}, validation_error("This field may not be blank.", "feature_flag_key", "blank")),
        ({"name": ""}, validation_error("This field may not be blank.", "name", "blank")),
        (
            {"name": "x" * 401},
            validation_error("Ensure this field has no more than 400 characters.", "name", "max_length"),
        ),
        ({"feature_flag_key": "boolean"}, validation_error(messages.FLAG_NOT_ELIGIBLE)),
    ],
)
def test_a_copy_that_breaks_the_create_rules_is_a_400_that_writes_nothing(api_client, project, source, body, expected):
    FeatureFlagFactory(project=project, key="boolean", filters={"groups": []})
    flags_before = FeatureFlag.objects.count()

    response = duplicate(api_client, project, source["id"], **body)

    assert response.status_code == 400
    assert response.json() == expected
    assert Experiment.objects.count() == 1
    assert FeatureFlag.objects.count() == flags_before


def test_a_deleted_or_unknown_experiment_cannot_be_copied(api_client, project):
    deleted = ExperimentFactory(project=project, deleted=True)

    for experiment_id in (deleted.id, 987654321):
        response = duplicate(api_client, project, experiment_id)

        assert response.status_code == 404
        assert response.json() == NOT_FOUND
    assert Experiment.objects.count() == 1


def test_a_read_only_key_cannot_duplicate(make_client, user, project):
    experiment = ExperimentFactory(project=project)

    response = duplicate(make_client(user, scopes=["experiment:read"]), project, experiment.id)

    assert response.status_code == 403
    assert response.json() == missing_scope("experiment:write")
    assert Experiment.objects.count() == 1


def test_a_user_of_another_organization_cannot_duplicate(make_client, project):
    experiment = ExperimentFactory(project=project)
    outsider_project = ProjectFactory()
    outsider = make_client(member_of(outsider_project))

    refused = duplicate(outsider, project, experiment.id)
    through_own_project = duplicate(outsider, outsider_project, experiment.id)

    assert refused.status_code == 403
    assert refused.json() == NOT_A_MEMBER
    assert through_own_project.status_code == 404
    assert through_own_project.json() == NOT_FOUND
    assert Experiment.objects.count() == 1
