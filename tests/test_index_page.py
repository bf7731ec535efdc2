"""`/` is a small HTML page linking the docs, the results pages, the login, the admin and the API; the embedded default's demo user
logs in there and administers the server at /admin/."""

import re

import pytest
from django.test import Client

from experiments_api.demo import seed_demo

LINK = re.compile(r'<a href="([^"]+)">')
DOCS_AND_ADMIN_LINKS = ["/api/schema/swagger-ui", "/api/schema/redoc", "/api/schema", "/admin/"]
LOGIN_LINK = "/api-auth/login/"
RESULTS_LINK = "/projects/"
RESOURCE_LINKS = [
    f"/api/projects/@current/{resource}"
    for resource in (
        "experiment_holdouts",
        "experiment_saved_metrics",
        "experiments",
        "feature_flags",
        "cohorts",
        "persons",
    )
]


def links(client: Client) -> list[str]:
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    return LINK.findall(response.content.decode())


def test_the_index_page_links_the_docs_the_results_the_login_the_admin_and_the_api(client, db):
    assert sorted(links(client)) == sorted([*DOCS_AND_ADMIN_LINKS, RESULTS_LINK, LOGIN_LINK, *RESOURCE_LINKS])


def test_the_index_page_answers_head_but_no_unsafe_method(client, db):
    assert client.head("/").status_code == 200
    assert client.post("/").status_code == 405


# What a browser sends when following a link.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.django_db
def test_the_demo_user_logs_in_follows_every_index_link_and_administers_the_server():
    demo = seed_demo()
    client = Client(enforce_csrf_checks=True)
    client.get(LOGIN_LINK)

    logged_in = client.post(
        LOGIN_LINK,
        {
            "username": demo["login"]["username"],
            "password": demo["login"]["password"],
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
    )
    answers = {link: client.get(link, HTTP_ACCEPT=BROWSER_ACCEPT).status_code for link in links(client)}
    admin_index = client.get("/admin/")

    assert (logged_in.status_code, logged_in["Location"]) == (302, "/")
    # Signed in, the page names the user instead of linking the login.
    assert answers == {link: 200 for link in DOCS_AND_ADMIN_LINKS + [RESULTS_LINK] + RESOURCE_LINKS}
    assert b"Site administration" in admin_index.content
    assert client.get("/admin/experiments/experiment/").status_code == 200
