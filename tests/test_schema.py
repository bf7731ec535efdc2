"""The OpenAPI 3 schema at /api/schema/ validates and documents bearer auth; the docs pages render."""

import pytest
import yaml
from openapi_spec_validator import validate

OPENAPI_JSON = "application/vnd.oai.openapi+json"


@pytest.fixture
def schema(client, db) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT=OPENAPI_JSON)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(OPENAPI_JSON)
    return response.json()


def test_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate(schema)


def test_schema_declares_the_bearer_security_scheme_for_every_operation(schema):
    assert schema["components"]["securitySchemes"]["PersonalAPIKeyAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "phx_...",
        "description": "A personal API key (`phx_…`), also accepted as `personal_api_key` in the body or query.",
    }
    operations = [operation for path_item in schema["paths"].values() for operation in path_item.values()]
    assert operations
    assert all({"PersonalAPIKeyAuth": []} in operation["security"] for operation in operations)


def test_schema_defaults_to_yaml_and_answers_without_trailing_slash(client, db):
    response = client.get("/api/schema")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(response.content)["info"]["title"] == "Experiments API"


@pytest.mark.parametrize("path", ["/api/schema/swagger-ui/", "/api/schema/redoc/"])
def test_documentation_pages_render(client, db, path):
    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"/api/schema" in response.content
