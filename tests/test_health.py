"""The /_health endpoint: 200 when the database and broker answer, 503 naming the failing part otherwise."""

from django.test import override_settings

CLOSED_PORT_BROKER_URL = "redis://127.0.0.1:1/0"


def test_health_reports_every_part_ok(client, db):
    response = client.get("/_health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@override_settings(CELERY_BROKER_URL=CLOSED_PORT_BROKER_URL)
def test_health_answers_503_naming_an_unreachable_broker(client, db):
    response = client.get("/_health")

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "ok", "broker": "unavailable", "failing": ["broker"]}


@override_settings(CELERY_BROKER_URL="memory://")
def test_health_reports_in_process_tasks_without_a_broker(client, db):
    response = client.get("/_health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "in-process"}
