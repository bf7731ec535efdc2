"""Shared fixtures: a project with a member, API clients authenticated by personal API key, a headless browser,
and the check of every response against the OpenAPI schema."""

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import Client
from rest_framework.test import APIClient

from tests.browser import BrowserPage, chromium
from tests.event_stores import DATABASE_STORE, event_store  # noqa: F401 (a fixture for every test module)
from tests.factories import ProjectFactory, api_key_for, member_of
from tests.schema_validation import validate_response


def pytest_collection_modifyitems(config, items):
    """On SQLite (experiments_api.settings.test_sqlite) only the store-parametrised tests and those marked
    `every_database` run: the rest of the suite is about PostgreSQL, Redis, the server and its clients."""
    if DATABASE_STORE != "sqlite":
        return
    selected, deselected = [], []
    for item in items:
        on_every_database = "event_store" in item.fixturenames or item.get_closest_marker("every_database")
        (selected if on_every_database else deselected).append(item)
    config.hook.pytest_deselected(items=deselected)
    items[:] = selected


@pytest.fixture(autouse=True, scope="session")
def _responses_match_the_schema():
    """Every response a test client receives is checked against the served OpenAPI schema (see schema_validation)."""
    send = Client.request

    def request_and_validate(self, **request):
        response = send(self, **request)
        validate_response(response.wsgi_request, response)
        return response

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Client, "request", request_and_validate)
        yield


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters live in the cache; every test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def project(db):
    return ProjectFactory()


@pytest.fixture
def user(project):
    return member_of(project)


@pytest.fixture
def make_client():
    """make_client(user, scopes=[...]) → an APIClient sending that user's new key as a Bearer token."""

    def _make(user, scopes=None, scoped_projects=None) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for(user, scopes, scoped_projects)}")
        return client

    return _make


@pytest.fixture
def api_client(user, make_client) -> APIClient:
    """A client for `user` with the wildcard scope."""
    return make_client(user)


@pytest.fixture
def browser_page(live_server, monkeypatch):
    """Headless Chromium on a fresh page of the live server; requests to other hosts are recorded and refused."""
    # Playwright's sync API keeps an asyncio loop running in this thread; the test's own ORM calls are still
    # synchronous, so Django's guard against ORM calls from async code does not apply to them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium() as browser:
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(30_000)
        page = BrowserPage(page=context.new_page())
        context.route("**/*", page.handle)
        yield page
        # While Playwright's loop runs, Django keeps separate connections for the test's ORM calls: close them here,
        # or they outlive the test and block dropping the test database.
        connections.close_all()
