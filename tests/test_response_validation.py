"""The suite-wide response check (tests/schema_validation.py) catches drift from the served schema."""

import pytest

from tests.schema_validation import validate_response


@pytest.fixture
def stats_response(api_client, project):
    response = api_client.get(f"/api/projects/{project.pk}/experiments/stats/")
    assert response.status_code == 200
    return response


def test_a_documented_response_passes(stats_response):
    validate_response(stats_response.wsgi_request, stats_response)


def test_a_field_of_the_wrong_type_fails(stats_response):
    stats_response.content = b'{"launched_last_30d": "many"}'

    with pytest.raises(AssertionError, match=r"launched_last_30d: 'many' is not of type 'integer'"):
        validate_response(stats_response.wsgi_request, stats_response)


def test_an_undocumented_status_fails(stats_response):
    stats_response.status_code = 418

    with pytest.raises(AssertionError, match="Unknown response http status: 418"):
        validate_response(stats_response.wsgi_request, stats_response)


def test_paths_the_schema_does_not_describe_are_not_checked(api_client):
    response = api_client.get("/no/such/path/")

    assert response.status_code == 404
    validate_response(response.wsgi_request, response)
