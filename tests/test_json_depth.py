"""Bodies nested deeper than MAX_JSON_DEPTH are a 400 parse error on every endpoint, never a RecursionError."""

import io
import json
import logging
import re
import uuid

import pytest
from django.urls import resolve
from rest_framework import exceptions
from rest_framework.test import APIClient

from events.messages import MALFORMED_JSON
from experiments_api import urls  # noqa: F401  (importing the URLconf registers the viewsets)
from experiments_api.exceptions import error_body
from experiments_api.parsers import JSON_TOO_DEEP, MAX_JSON_DEPTH, JSONParser
from experiments_api.routing import projects_router
from tests.factories import CohortFactory, ExperimentFactory, FeatureFlagFactory, HoldoutFactory, SavedMetricFactory

# The body of the report: 1,000 levels in 2 KB.
DEEP_BODY = "[" * 1000 + "]" * 1000
TOO_DEEP = error_body(type="invalid_request", code="parse_error", detail=JSON_TOO_DEEP)
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def router_paths(project_id: int, ids: dict[str, int] | None = None) -> list[str]:
    """A concrete path for every route of the project-scoped API; `ids` maps a resource to a real object's id."""
    paths = []
    for pattern in projects_router.urls:
        # "^projects/(?P<project_id>[^/]+)/<resource>/..."
        resource = str(pattern.pattern).split(")/", 1)[1].split("/")[0]
        values = {
            "project_id": str(project_id),
            "pk": str((ids or {}).get(resource, 1)),
            "recalculation_id": str(uuid.uuid4()),
        }
        route = _GROUP.sub(lambda group, values=values: values[group.group(1)], str(pattern.pattern))
        paths.append("/api/" + route.removeprefix("^").removesuffix("/?$") + "/")
    return paths


OTHER_DRF_PATHS = ["/api/feature_flag/local_evaluation/", "/flags/definitions"]


def assert_nothing_logged_as_error(caplog) -> None:
    assert "RecursionError" not in caplog.text
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


WRITE_METHODS = ("post", "put", "patch")


def write_methods(path: str) -> list[str]:
    """The write methods the view at `path` answers (a viewset's mapped actions, or an APIView's handlers)."""
    view = resolve(path.split("?")[0]).func
    if hasattr(view, "actions"):
        return [method for method in WRITE_METHODS if method in view.actions]
    return [method for method in WRITE_METHODS if hasattr(view.view_class, method)]


@pytest.mark.parametrize("method", WRITE_METHODS)
def test_without_a_key_a_deeply_nested_body_is_a_parse_error_on_every_drf_endpoint(db, project, caplog, method):
    # The body is read for a `personal_api_key` before anything else, whatever the method.
    paths = router_paths(project.pk) + OTHER_DRF_PATHS
    assert len(paths) > 30

    answers = {path: getattr(APIClient(), method)(path, DEEP_BODY, content_type="application/json") for path in paths}

    assert {path: (response.status_code, response.json()) for path, response in answers.items()} == {
        path: (400, TOO_DEEP) for path in paths
    }
    assert_nothing_logged_as_error(caplog)


def test_with_a_key_every_write_of_every_drf_endpoint_refuses_a_deeply_nested_body(api_client, project, caplog):
    ids = {
        "experiments": ExperimentFactory(project=project).pk,
        "experiment_holdouts": HoldoutFactory(project=project).pk,
        "experiment_saved_metrics": SavedMetricFactory(project=project).pk,
        "feature_flags": FeatureFlagFactory(project=project).pk,
        "cohorts": CohortFactory(project=project).pk,
    }
    paths = router_paths(project.pk, ids) + OTHER_DRF_PATHS
    writes = [(path, method) for path in paths for method in write_methods(path)]
    assert len(writes) > 25

    answers = {
        (path, method): getattr(api_client, method)(path, DEEP_BODY, content_type="application/json")
        for path, method in writes
    }

    assert {write: (response.status_code, response.json()) for write, response in answers.items()} == {
        write: (400, TOO_DEEP) for write in writes
    }
    assert_nothing_logged_as_error(caplog)


def test_the_schema_endpoint_refuses_a_deeply_nested_body_too(db, caplog):
    response = APIClient().post(
        "/api/schema/", DEEP_BODY, content_type="application/json", HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 400
    assert response.json() == TOO_DEEP
    assert_nothing_logged_as_error(caplog)


@pytest.mark.parametrize("path", ["/flags/?v=2", "/decide/?v=4", "/batch/", "/e/"])
def test_a_deeply_nested_body_is_a_parse_error_on_the_sdk_endpoints(client, db, caplog, path):
    response = client.post(path, DEEP_BODY, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == TOO_DEEP
    assert_nothing_logged_as_error(caplog)


def test_an_event_with_deeply_nested_properties_is_a_parse_error_not_a_crash(client, project, caplog):
    # Shallow enough to parse, deep enough that copying the properties (to replace the NUL) used to recurse.
    properties = json.loads(nested(400).replace("[]", '["\\u0000"]'))
    body = {"api_key": project.api_token, "event": "deep", "distinct_id": "u1", "properties": {"deep": properties}}

    response = client.post("/batch/", json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert response.json() == TOO_DEEP
    assert_nothing_logged_as_error(caplog)


def test_malformed_json_keeps_its_own_message_on_the_sdk_endpoints(client, db):
    response = client.post("/flags/", "[[[", content_type="application/json")

    assert response.status_code == 400
    assert response.json() == error_body(type="invalid_request", code="parse_error", detail=MALFORMED_JSON)


@pytest.mark.parametrize(
    ("depth", "too_deep"),
    [(1, False), (MAX_JSON_DEPTH, False), (MAX_JSON_DEPTH + 1, True), (1000, True), (100_000, True)],
)
def test_the_parser_allows_exactly_max_json_depth_levels(depth, too_deep):
    stream = io.BytesIO(nested(depth).encode())

    if too_deep:
        with pytest.raises(exceptions.ParseError) as raised:
            JSONParser().parse(stream)
        assert raised.value.detail == JSON_TOO_DEEP
    else:
        assert JSONParser().parse(stream) == json.loads(nested(depth))
