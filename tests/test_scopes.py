"""API-key scopes: the grant rules, the scope each action needs, and the 403 a missing scope gives over HTTP."""

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from experiments_api.exceptions import error_body
from experiments_api.permissions import MISSING_SCOPE_MESSAGE, required_scopes_for
from experiments_api.scopes import scopes_grant, validate_scopes


@pytest.mark.parametrize(
    ("granted", "required", "allowed"),
    [
        ([], "experiment:write", True),
        (["*"], "experiment:write", True),
        (["*"], "feature_flag:read", True),
        (["experiment:read"], "experiment:read", True),
        (["experiment:read"], "experiment:write", False),
        (["experiment:write"], "experiment:read", True),
        (["experiment:write"], "experiment:write", True),
        (["experiment:write"], "feature_flag:read", False),
        (["feature_flag:write"], "experiment:read", False),
        (["feature_flag:read", "experiment:read"], "feature_flag:read", True),
        (["feature_flag:read", "experiment:read"], "feature_flag:write", False),
    ],
)
def test_scopes_grant(granted, required, allowed):
    assert scopes_grant(granted, required) is allowed


def test_validate_scopes_accepts_known_scopes_and_the_wildcard():
    validate_scopes(["*", "experiment:read", "feature_flag:write"])


def test_validate_scopes_names_the_unknown_ones():
    with pytest.raises(ValidationError) as error:
        validate_scopes(["experiment:read", "experiments:read", "experiment:admin"])

    assert error.value.messages[0].startswith(
        "Unknown scope(s): experiment:admin, experiments:read. Valid scopes are: "
    )


def _view(**attributes) -> APIView:
    return type("SomeViewSet", (APIView,), attributes)()


@pytest.mark.parametrize(
    ("method", "attributes", "expected"),
    [
        ("GET", {"scope_object": "experiment"}, ["experiment:read"]),
        ("HEAD", {"scope_object": "experiment"}, ["experiment:read"]),
        ("OPTIONS", {"scope_object": "experiment"}, ["experiment:read"]),
        ("POST", {"scope_object": "experiment"}, ["experiment:write"]),
        ("PATCH", {"scope_object": "feature_flag"}, ["feature_flag:write"]),
        ("DELETE", {"scope_object": "feature_flag"}, ["feature_flag:write"]),
        ("GET", {"scope_object": "experiment", "required_scopes": ["feature_flag:read"]}, ["feature_flag:read"]),
        (
            "POST",
            {"required_scopes": ["experiment:write", "feature_flag:write"]},
            ["experiment:write", "feature_flag:write"],
        ),
    ],
)
def test_required_scopes_for_an_action(method, attributes, expected):
    request = APIRequestFactory().generic(method, "/")

    assert required_scopes_for(_view(**attributes), request) == expected


def test_a_view_without_scope_object_fails_loudly_instead_of_being_open():
    with pytest.raises(ImproperlyConfigured) as error:
        required_scopes_for(_view(), APIRequestFactory().get("/"))

    assert str(error.value) == (
        'SomeViewSet must declare `scope_object` (e.g. scope_object = "experiment") so API-key scopes can be checked.'
    )


def missing_scope_body(scope: str) -> dict:
    return error_body(
        type="authentication_error", code="permission_denied", detail=MISSING_SCOPE_MESSAGE.format(scope=scope)
    )


METHOD_PUT_NOT_ALLOWED = error_body(
    type="invalid_request", code="method_not_allowed", detail='Method "PUT" not allowed.'
)


@pytest.fixture
def url(project) -> str:
    return f"/api/projects/{project.pk}/experiments/"


# A PUT on the list route reaches the 405 only after the write scope was granted, so it probes the scope
# check without depending on any create payload.
@pytest.mark.parametrize(
    ("scopes", "read_status", "write_status", "write_body"),
    [
        (["experiment:read"], 200, 403, missing_scope_body("experiment:write")),
        (["experiment:write"], 200, 405, METHOD_PUT_NOT_ALLOWED),
        (["experiment:read", "experiment:write"], 200, 405, METHOD_PUT_NOT_ALLOWED),
        (["*"], 200, 405, METHOD_PUT_NOT_ALLOWED),
        ([], 200, 405, METHOD_PUT_NOT_ALLOWED),
        (["feature_flag:write"], 403, 403, missing_scope_body("experiment:write")),
    ],
    ids=["read", "write", "read+write", "wildcard", "legacy-none", "wrong-object"],
)
def test_scope_matrix(make_client, user, url, scopes, read_status, write_status, write_body):
    client = make_client(user, scopes=scopes)

    read = client.get(url)
    write = client.put(url, {}, format="json")

    assert read.status_code == read_status
    if read_status == 403:
        assert read.json() == missing_scope_body("experiment:read")
    else:
        assert read.json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert write.status_code == write_status
    assert write.json() == write_body


def test_a_read_only_key_cannot_create(make_client, user, url):
    response = make_client(user, scopes=["experiment:read"]).post(
        url, {"name": "Checkout test", "feature_flag_key": "checkout-test"}, format="json"
    )

    assert response.status_code == 403
    assert response.json() == {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": "API key missing required scope 'experiment:write'",
        "attr": None,
    }


def test_a_write_key_can_create(make_client, user, url):
    response = make_client(user, scopes=["experiment:write"]).post(
        url, {"name": "Checkout test", "feature_flag_key": "checkout-test"}, format="json"
    )

    assert response.status_code == 201


def test_a_custom_action_needs_its_declared_scope_not_the_objects(make_client, user, url):
    experiment_key = make_client(user, scopes=["experiment:write"])
    flag_key = make_client(user, scopes=["feature_flag:read"])

    refused = experiment_key.get(f"{url}eligible_feature_flags/")
    allowed = flag_key.get(f"{url}eligible_feature_flags/")

    assert refused.status_code == 403
    assert refused.json() == missing_scope_body("feature_flag:read")
    assert allowed.status_code == 200


def test_a_session_login_is_not_scope_limited(user, url):
    client = APIClient()
    client.force_login(user)

    assert client.get(url).status_code == 200
    assert client.put(url, {}, format="json").json() == METHOD_PUT_NOT_ALLOWED
    created = client.post(url, {"name": "Checkout test", "feature_flag_key": "checkout-test"}, format="json")
    assert created.status_code == 201


def test_the_browsable_api_renders_for_a_logged_in_user(user, url):
    client = APIClient()
    client.force_login(user)

    response = client.get(url, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert b"Experiments" in response.content
