"""With DEBUG off, as under gunicorn, WhiteNoise serves every static file the browsable API, the admin and the docs
pages reference (from STATIC_ROOT, which `collectstatic` fills; scripts/test runs it)."""

import re

import pytest
from django.conf import settings

STATIC_REFERENCE = re.compile(r'(?:href|src)="(/static/[^"]+)"')


def static_references(html: str) -> list[str]:
    return sorted(set(STATIC_REFERENCE.findall(html)))


def fetch(client, path: str, **headers):
    response = client.get(path, **headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


@pytest.mark.parametrize(
    "page",
    ["/api/projects/{project_id}/experiments/", "/admin/login/", "/api/schema/swagger-ui/", "/api/schema/redoc/"],
)
def test_every_static_file_a_page_references_is_served_with_debug_off(client, user, project, page):
    client.force_login(user)
    html = client.get(page.format(project_id=project.pk), HTTP_ACCEPT="text/html").content.decode()
    references = static_references(html)

    assert settings.DEBUG is False
    assert references, f"{page} references no static file"
    for path in references:
        response, body = fetch(client, path)
        assert (path, response.status_code) == (path, 200)
        assert body, path


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/rest_framework/css/bootstrap.min.css", "text/css"),
        ("/static/rest_framework/js/csrf.js", "text/javascript"),
        ("/static/admin/css/base.css", "text/css"),
        ("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js", "text/javascript"),
    ],
)
def test_static_files_are_served_compressed_with_their_content_type(client, db, path, content_type):
    response, body = fetch(client, path, HTTP_ACCEPT_ENCODING="gzip")

    assert response.status_code == 200
    assert response["Content-Type"].split(";")[0] == content_type
    assert response["Content-Encoding"] == "gzip"
    assert body[:2] == b"\x1f\x8b"


def test_an_unknown_static_file_is_the_json_404(client, db):
    response = client.get("/static/no/such/file.css")

    assert response.status_code == 404
    assert response.json() == {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}
