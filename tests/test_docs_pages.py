"""Swagger UI and Redoc render the served schema in headless Chromium from bundled assets, with no other host."""

import pytest

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def operation_ids(client) -> set[str]:
    schema = client.get("/api/schema/", {"format": "json"}).json()
    return {
        operation["operationId"]
        for path_item in schema["paths"].values()
        for method, operation in path_item.items()
        if method in HTTP_METHODS
    }


def test_swagger_ui_lists_every_operation_offline(browser_page, operation_ids):
    page = browser_page.page

    page.goto("/api/schema/swagger-ui/")
    page.locator(".opblock").first.wait_for()

    # Swagger UI's deep-link ids are "operations-<tag>-<operationId>".
    shown = page.eval_on_selector_all(".opblock", "blocks => blocks.map(block => block.id)")
    assert {block_id.split("-", 2)[2] for block_id in shown} == operation_ids
    assert len(shown) == len(operation_ids)
    assert browser_page.outside_requests == []


def test_redoc_lists_every_operation_offline(browser_page, operation_ids):
    page = browser_page.page

    page.goto("/api/schema/redoc/")
    page.locator("[data-section-id^='operation/']").first.wait_for()

    shown = page.eval_on_selector_all(
        "[data-section-id^='operation/']", "sections => sections.map(section => section.dataset.sectionId)"
    )
    assert {section_id.removeprefix("operation/") for section_id in shown} == operation_ids
    assert len(shown) == len(operation_ids)
    assert browser_page.outside_requests == []
