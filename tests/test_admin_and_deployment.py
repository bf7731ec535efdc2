"""The Django admin lists every model a self-hoster manages, the docker-compose stack is well-formed and the image
collects its static files."""

from pathlib import Path

import pytest
import yaml
from django.conf import settings

from tests.factories import ExperimentFactory, FeatureFlagFactory, UserFactory

ADMIN_LISTS = [
    "experiments_api/organization",
    "experiments_api/project",
    "experiments_api/user",
    "experiments_api/personalapikey",
    "flags/featureflag",
    "flags/cohort",
    "experiments/experiment",
    "experiments/experimentholdout",
    "experiments/experimentsavedmetric",
    "experiments/experimenttimeseriesrecalculation",
    "experiments/experimentmetricsrecalculation",
    "events/eventdefinition",
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ADMIN_LISTS)
def test_a_staff_user_can_open_every_admin_list(client, project, path):
    ExperimentFactory(project=project, feature_flag=FeatureFlagFactory(project=project))
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.get(f"/admin/{path}/")

    assert response.status_code == 200
    assert b'id="changelist"' in response.content


def test_docker_compose_runs_postgres_redis_web_and_worker_with_health_checks():
    compose = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())
    services = {name: service for name, service in compose["services"].items() if "profiles" not in service}

    assert set(services) == {"postgres", "redis", "web", "worker"}
    assert all("healthcheck" in service for service in services.values())
    assert "migrate" in services["web"]["command"] and "gunicorn" in services["web"]["command"]
    assert services["worker"]["command"].startswith("celery -A experiments_api worker --beat")
    for app in ("web", "worker"):
        environment = services[app]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["REDIS_URL"].startswith("redis://")
        assert services[app]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_the_docker_image_collects_the_static_files_whitenoise_serves():
    run_steps = [
        line.removeprefix("RUN ").strip()
        for line in (Path(settings.BASE_DIR) / "Dockerfile").read_text().splitlines()
        if line.startswith("RUN ")
    ]
    install = next(index for index, step in enumerate(run_steps) if step.startswith("pip install"))
    collect = next(index for index, step in enumerate(run_steps) if "manage.py collectstatic --noinput" in step)

    assert install < collect
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE


def test_the_clickhouse_profile_adds_a_server_and_creates_its_tables():
    compose = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())
    profiled = {name: service for name, service in compose["services"].items() if "profiles" in service}

    assert {name: service["profiles"] for name, service in profiled.items()} == {
        "clickhouse": ["clickhouse"],
        "clickhouse-migrate": ["clickhouse"],
    }
    assert "healthcheck" in profiled["clickhouse"]
    assert profiled["clickhouse-migrate"]["command"] == "python manage.py clickhouse_migrate"
    assert profiled["clickhouse-migrate"]["depends_on"] == {"clickhouse": {"condition": "service_healthy"}}
    for app in ("web", "worker", "clickhouse-migrate"):
        service = compose["services"][app]
        assert service["build"]["args"] == {"EXTRAS": "${EXTRAS:-}"}
        assert service["environment"]["EVENT_STORE_URL"] == "${EVENT_STORE_URL:-}"
