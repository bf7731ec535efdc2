"""Limit/offset pagination on a list endpoint: PostHog's page shape, the 1000 clamp, and 400s for bad parameters."""

import pytest

from experiments.models import Experiment
from experiments_api.exceptions import error_body
from experiments_api.pagination import MAX_PAGE_SIZE
from flags.models import FeatureFlag


@pytest.fixture
def url(project) -> str:
    return f"/api/projects/{project.pk}/experiments/"


def create_experiments(project, count: int) -> None:
    flag = FeatureFlag.objects.create(project=project, key="shared-flag")
    Experiment.objects.bulk_create(
        Experiment(project=project, name=f"Experiment {number}", feature_flag=flag) for number in range(count)
    )


def page_links(response) -> dict:
    body = response.json()
    return {"count": body["count"], "next": body["next"], "previous": body["previous"], "size": len(body["results"])}


def test_the_default_page_holds_100_and_links_the_next(api_client, project, url):
    create_experiments(project, 101)

    response = api_client.get(url)

    assert response.status_code == 200
    assert page_links(response) == {
        "count": 101,
        "next": f"http://testserver{url}?limit=100&offset=100",
        "previous": None,
        "size": 100,
    }


def test_limit_and_offset_select_a_page_with_both_links(api_client, project, url):
    create_experiments(project, 5)

    response = api_client.get(url, {"limit": 2, "offset": 2})

    assert page_links(response) == {
        "count": 5,
        "next": f"http://testserver{url}?limit=2&offset=4",
        "previous": f"http://testserver{url}?limit=2",
        "size": 2,
    }


def test_an_offset_past_the_end_is_an_empty_page(api_client, project, url):
    create_experiments(project, 3)

    response = api_client.get(url, {"offset": 10})

    assert response.json() == {
        "count": 3,
        "next": None,
        "previous": f"http://testserver{url}?limit=100",
        "results": [],
    }


def test_an_offset_beyond_any_database_integer_is_an_empty_page(api_client, project, url):
    create_experiments(project, 1)

    response = api_client.get(url, {"offset": "99999999999999999999999"})

    assert response.status_code == 200
    assert page_links(response) == {
        "count": 1,
        "next": None,
        "previous": f"http://testserver{url}?limit=100&offset=99999999999999999999899",
        "size": 0,
    }


def test_empty_parameters_mean_the_defaults(api_client, project, url):
    create_experiments(project, 3)

    response = api_client.get(url, {"limit": "", "offset": ""})

    assert page_links(response) == {"count": 3, "next": None, "previous": None, "size": 3}


def test_a_huge_limit_is_clamped_to_the_maximum_page(api_client, project, url):
    create_experiments(project, MAX_PAGE_SIZE + 1)

    response = api_client.get(url, {"limit": 1_000_000})

    assert response.status_code == 200
    assert page_links(response) == {
        "count": 1001,
        "next": f"http://testserver{url}?limit=1000&offset=1000",
        "previous": None,
        "size": 1000,
    }


@pytest.mark.parametrize(
    ("params", "attr", "detail"),
    [
        ({"limit": "0"}, "limit", "limit must be a positive integer."),
        ({"limit": "-1"}, "limit", "limit must be a positive integer."),
        ({"limit": "ten"}, "limit", "limit must be a positive integer."),
        ({"limit": "1.5"}, "limit", "limit must be a positive integer."),
        ({"offset": "-1"}, "offset", "offset must be a non-negative integer."),
        ({"offset": "abc"}, "offset", "offset must be a non-negative integer."),
        ({"limit": "10", "offset": "1e3"}, "offset", "offset must be a non-negative integer."),
    ],
)
def test_malformed_limit_or_offset_is_a_400(api_client, url, params, attr, detail):
    response = api_client.get(url, params)

    assert response.status_code == 400
    assert response.json() == error_body(type="validation_error", code="invalid_input", detail=detail, attr=attr)
