"""Every error is PostHog's JSON envelope {type, code, detail, attr}: 404, 405, 415, 400 parse errors, requests
Django refuses, CSRF failures and 500 (429 is covered in test_throttling.py)."""

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

    response = client.get(url, {"offset": 1})  # a later page is counted (a short first page is not)

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


CSRF_COOKIE_NOT_SET = error_body(
    type="authentication_error", code="permission_denied", detail="CSRF Failed: CSRF cookie not set."
)


@pytest.fixture
def session_client(user) -> Client:
    """A browser-like session: logged in, sending no CSRF token (Django's test client skips CSRF unless asked)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/api/projects/{project_id}/experiment_holdouts/0.5/",
        "/api/projects/{project_id}/no_such_resource/1/",
        "/api/no_such_thing/",
    ],
)
def test_an_unsafe_method_on_an_unknown_path_with_a_session_is_the_json_404(session_client, project, path):
    response = session_client.delete(path.format(project_id=project.pk))

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == NOT_FOUND


def test_a_csrf_failure_in_an_api_view_is_the_403_envelope(session_client, url):
    response = session_client.post(url, {"name": "Checkout", "feature_flag_key": "checkout"})

    assert response.status_code == 403
    assert response.json() == CSRF_COOKIE_NOT_SET


def test_a_csrf_failure_outside_the_api_views_is_the_same_403_envelope(session_client):
    response = session_client.post("/_health")

    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json() == CSRF_COOKIE_NOT_SET


def test_the_admin_login_keeps_djangos_csrf_page(db):
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "a", "password": "b"})

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert b"CSRF verification failed" in response.content


def test_a_host_not_allowed_is_the_400_envelope(client, db):
    response = client.get("/_health", HTTP_HOST="attacker.example")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == error_body(type="invalid_request", code="bad_request", detail="Bad request.")
