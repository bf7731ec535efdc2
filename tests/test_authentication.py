"""Personal API key authentication: header, then body, then query string; invalid, revoked and missing keys."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from experiments_api import messages
from experiments_api.exceptions import error_body
from experiments_api.models import PersonalAPIKey, hash_personal_api_key
from experiments_api.services import personal_api_key_create, personal_api_key_revoke

EMPTY_PAGE = {"count": 0, "next": None, "previous": None, "results": []}
NOT_AUTHENTICATED = error_body(
    type="authentication_error", code="not_authenticated", detail="Authentication credentials were not provided."
)


def invalid_key_body(source: str) -> dict:
    return error_body(
        type="authentication_error",
        code="authentication_failed",
        detail=messages.INVALID_PERSONAL_API_KEY.format(source=source),
    )


@pytest.fixture
def url(project) -> str:
    return f"/api/projects/{project.pk}/experiments/"


@pytest.fixture
def key(user) -> tuple[PersonalAPIKey, str]:
    return personal_api_key_create(user=user, scopes=["*"])


def test_a_bearer_key_in_the_authorization_header_authenticates(url, key):
    response = APIClient().get(url, HTTP_AUTHORIZATION=f"Bearer {key[1]}")

    assert response.status_code == 200
    assert response.json() == EMPTY_PAGE


def test_the_bearer_keyword_is_case_insensitive(url, key):
    response = APIClient().get(url, HTTP_AUTHORIZATION=f"bearer {key[1]}")

    assert response.status_code == 200


def test_a_key_in_the_json_body_authenticates(url, key):
    response = APIClient().post(
        url,
        {"name": "Checkout test", "feature_flag_key": "checkout-test", "personal_api_key": key[1]},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["name"] == "Checkout test"


def test_a_key_in_the_query_string_authenticates(url, key):
    response = APIClient().get(url, {"personal_api_key": key[1]})

    assert response.status_code == 200
    assert response.json() == EMPTY_PAGE


def test_a_legacy_key_without_the_phx_prefix_authenticates(url, user):
    raw_value = "legacy0123456789abcdefghijklmnopqrstuvwxyz"
    PersonalAPIKey.objects.create(
        user=user, secure_value=hash_personal_api_key(raw_value), mask_value="lega...wxyz", scopes=[]
    )

    response = APIClient().get(url, HTTP_AUTHORIZATION=f"Bearer {raw_value}")

    assert response.status_code == 200


def test_an_invalid_key_in_the_header_is_refused_with_the_whole_envelope(url, db):
    response = APIClient().get(url, HTTP_AUTHORIZATION="Bearer phx_not_a_real_key")

    assert response.status_code == 401
    assert response.json() == {
        "type": "authentication_error",
        "code": "authentication_failed",
        "detail": "Personal API key found in request Authorization header is invalid.",
        "attr": None,
    }


def test_an_invalid_key_in_the_body_names_the_body(url, db):
    response = APIClient().post(url, {"name": "x", "personal_api_key": "phx_not_a_real_key"}, format="json")

    assert response.status_code == 401
    assert response.json() == invalid_key_body("body")


def test_an_invalid_key_in_the_query_string_names_the_query_string(url, db):
    response = APIClient().get(url, {"personal_api_key": "phx_not_a_real_key"})

    assert response.status_code == 401
    assert response.json() == invalid_key_body("query string")


def test_the_first_key_found_wins_even_when_a_later_one_is_valid(url, key):
    response = APIClient().get(f"{url}?personal_api_key={key[1]}", HTTP_AUTHORIZATION="Bearer phx_not_a_real_key")

    assert response.status_code == 401
    assert response.json() == invalid_key_body("Authorization header")


def test_a_valid_header_key_is_not_overridden_by_an_invalid_query_key(url, key):
    response = APIClient().get(f"{url}?personal_api_key=phx_not_a_real_key", HTTP_AUTHORIZATION=f"Bearer {key[1]}")

    assert response.status_code == 200


def test_a_revoked_key_is_refused(url, key):
    personal_api_key_revoke(key=key[0])

    response = APIClient().get(url, HTTP_AUTHORIZATION=f"Bearer {key[1]}")

    assert response.status_code == 401
    assert response.json() == invalid_key_body("Authorization header")


def test_the_key_of_an_inactive_user_is_refused(url, user, key):
    user.is_active = False
    user.save(update_fields=["is_active"])

    response = APIClient().get(url, {"personal_api_key": key[1]})

    assert response.status_code == 401
    assert response.json() == invalid_key_body("query string")


def test_no_credentials_is_401_not_authenticated(url, db):
    response = APIClient().get(url)

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


@pytest.mark.parametrize(
    "header",
    ["Bearer pha_oauth_access_token", "Basic dXNlcjpwYXNz", "Bearer ", "phx_without_a_scheme"],
)
def test_headers_that_carry_no_personal_api_key_are_skipped(url, db, header):
    response = APIClient().get(url, HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


def test_an_oauth_bearer_token_is_skipped_so_a_query_string_key_still_authenticates(url, key):
    response = APIClient().get(url, {"personal_api_key": key[1]}, HTTP_AUTHORIZATION="Bearer pha_oauth_token")

    assert response.status_code == 200


def test_last_used_at_is_recorded_on_first_use(url, key):
    before = timezone.now()

    APIClient().get(url, HTTP_AUTHORIZATION=f"Bearer {key[1]}")

    key[0].refresh_from_db()
    assert key[0].last_used_at is not None
    assert before <= key[0].last_used_at <= timezone.now()


def test_last_used_at_is_not_rewritten_within_the_hour(url, key):
    recently = timezone.now() - timezone.timedelta(minutes=59)
    PersonalAPIKey.objects.filter(pk=key[0].pk).update(last_used_at=recently)

    response = APIClient().get(url, HTTP_AUTHORIZATION=f"Bearer {key[1]}")

    assert response.status_code == 200
    key[0].refresh_from_db()
    assert key[0].last_used_at == recently


def test_last_used_at_is_rewritten_after_an_hour(url, key):
    long_ago = timezone.now() - timezone.timedelta(minutes=61)
    PersonalAPIKey.objects.filter(pk=key[0].pk).update(last_used_at=long_ago)
    before = timezone.now()

    APIClient().get(url, HTTP_AUTHORIZATION=f"Bearer {key[1]}")

    key[0].refresh_from_db()
    assert key[0].last_used_at >= before
