"""Schemathesis over every operation of the served schema: no 5xx, and every status code, content type and body
the server answers is the one the schema documents. Requests carry a real personal API key for a project that
holds a launched experiment with a metric; `project_id` and `id` are fixed to them so the calls reach real objects
(other ids are covered by the generated 404s of the other resources)."""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import ExperimentFactory, api_key_for, mean_metric
from tests.schema_validation import served_schema

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Bounded so the whole run stays within a couple of minutes on two cores.
EXAMPLES_PER_OPERATION = 5


@pytest.fixture
def wsgi_connection_kept():
    """Requests through the WSGI application keep the test's database connection open (as Django's own test
    client does), so they see the test's data inside its transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(db, project, user, wsgi_connection_kept) -> dict:
    """A real key's header and the ids every generated request targets."""
    experiment = ExperimentFactory(project=project, metrics=[mean_metric(uuid="m-1", fingerprint="f" * 64)])
    return {
        "headers": {"Authorization": f"Bearer {api_key_for(user)}"},
        "path": {"project_id": str(project.pk), "id": str(experiment.pk)},
    }


# The served schema, called in-process through Django's WSGI application.
schema = schemathesis.openapi.from_dict(served_schema())
schema.app = get_wsgi_application()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_what_the_schema_documents(case, seeded):
    for name, value in seeded["path"].items():
        if name in (case.path_parameters or {}):
            case.path_parameters[name] = value
    case.call_and_validate(headers=seeded["headers"], checks=CHECKS)
