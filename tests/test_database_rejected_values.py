"""Values that pass validation but that PostgreSQL refuses are a 400 that writes nothing, never a 500."""

import pytest

from experiments.models import Experiment
from experiments_api import messages
from experiments_api.exceptions import error_body
from flags.models import FeatureFlag
from tests.factories import mean_metric

pytestmark = pytest.mark.django_db

REFUSED = error_body(type="validation_error", code="invalid_input", detail=messages.DATABASE_REJECTED_VALUE)


def test_a_nul_character_in_a_metric_is_refused_on_create(api_client, project):
    response = api_client.post(
        f"/api/projects/{project.id}/experiments/",
        {"name": "Nul", "feature_flag_key": "nul", "metrics": [{**mean_metric(), "name": "bad\u0000name"}]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == REFUSED
    assert Experiment.objects.count() == 0
    assert FeatureFlag.objects.count() == 0


def test_a_nul_character_in_parameters_is_refused_on_update(api_client, project):
    created = api_client.post(
        f"/api/projects/{project.id}/experiments/", {"name": "Ok", "feature_flag_key": "ok"}, format="json"
    ).json()

    response = api_client.patch(
        f"/api/projects/{project.id}/experiments/{created['id']}/", {"parameters": {"note": "\u0000"}}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == REFUSED
    assert Experiment.objects.get().parameters == {}
