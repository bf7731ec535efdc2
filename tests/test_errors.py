"""Every error is PostHog's JSON envelope {type, code, detail, attr}: 404, 405, 415, 400 parse errors and 500
(429 is covered in test_throttling.py)."""

import pytest
from django.db import DatabaseError
from django.db.models import QuerySet
from django.middleware.common import CommonMiddleware
from django.test import Client
from rest_framework.test import APIClient

from experiments_api.exceptions import error_body
from tests.helpers import NOT_FOUND


@pytest.mark.parametrize(
    "path",
    [
        "/api/no_such_thing/",
        "/api/no_such_thing",
        "/api/projects/",
        "/no_such_page",
        "/",
    ],
)
def test_unknown_paths_answer_the_json_404_envelope(client, db, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == NOT_FOUND


def test_an_unknown_resource_under_a_project_is_a_json_404(api_client, project):
    response = api_client.post(f"/api/projects/{project.pk}/no_such_resource/", {"name": "x"})

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.fixture
def url(project) -> str:
    return f"/api/projects/{project.pk}/experiments/"


def test_an_unsupported_method_on_a_list_route_is_405(api_client, url):
    response = api_client.put(url, {}, format="json")

    assert response.status_code == 405
    assert response.json() == {
        "type": "invalid_request",
        "code": "method_not_allowed",
        "detail": 'Method "PUT" not allowed.',
        "attr": None,
    }


def test_an_unsupported_content_type_is_415(api_client, url):
    response = api_client.post(url, "name=Checkout", content_type="text/plain")

    assert response.status_code == 415
    assert response.json() == {
        "type": "invalid_request",
        "code": "unsupported_media_type",
        "detail": 'Unsupported media type "text/plain" in request.',
        "attr": None,
    }


MALFORMED_JSON = error_body(
    type="invalid_request",
    code="parse_error",
    detail="JSON parse error - Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
)


def test_a_malformed_json_body_is_a_400_parse_error(api_client, url):
    response = api_client.post(url, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json() == MALFORMED_JSON


def test_a_malformed_json_body_is_a_parse_error_for_a_session_login_too(user, url):
    client = APIClient()
    client.force_login(user)

    response = client.post(url, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json() == MALFORMED_JSON


SERVER_ERROR = error_body(type="server_error", code="error", detail="A server error occurred.")
LEAKY_DATABASE_ERROR = 'relation "secret_table" does not exist\nLINE 1: SELECT password FROM secret_table'


def test_an_internal_error_in_an_api_view_is_a_500_envelope_without_details(user, url, monkeypatch, caplog):
    def failing_count(queryset):
        raise DatabaseError(LEAKY_DATABASE_ERROR)

    monkeypatch.setattr(QuerySet, "count", failing_count)
    client = APIClient(raise_request_exception=False)
    client.force_login(user)

    response = client.get(url)

    assert response.status_code == 500
    assert response.json() == SERVER_ERROR
    assert b"secret_table" not in response.content
    assert b"Traceback" not in response.content
    assert "secret_table" in caplog.text


def test_an_internal_error_outside_the_api_views_is_a_500_envelope(db, monkeypatch):
    def failing_process_request(middleware, request):
        raise RuntimeError(LEAKY_DATABASE_ERROR)

    monkeypatch.setattr(CommonMiddleware, "process_request", failing_process_request)

    response = Client(raise_request_exception=False).get("/_health")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == SERVER_ERROR
