"""SDKs generated from the served schema work unchanged against a live server.

Both clients are generated in the test run from `/api/schema/` of the live server (nothing generated is committed):
a Python client by openapi-python-client, and TypeScript types by openapi-typescript used with openapi-fetch,
type-checked with `tsc --noEmit` and run with node. Each runs the same scenario (list, create, retrieve, PATCH,
duplicate, launch, timeseries_results, and a 404 parsed as the typed `Error`) and must report the same summary.
The npm packages come from tests/sdk/package-lock.json (`npm ci`, run by scripts/test).
"""

import importlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.factories import ExperimentFactory, ProjectFactory, api_key_for, member_of

SDK_DIR = Path(__file__).parent / "sdk"
GENERATED_DIR = SDK_DIR / "generated"
NODE_BIN = SDK_DIR / "node_modules" / ".bin"
PYTHON_CLIENT_PACKAGE = "experiments_api_client"
BIG_ID = 2147483647
METRIC = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "uuid": "sdk-metric",
    "source": {"kind": "EventsNode", "event": "purchase"},
}


def expected_summary(listed_count: int) -> dict:
    return {
        "listed_count": listed_count,
        "created": {"name": "SDK checkout", "status": "draft", "holdout": None},
        "retrieved_name": "SDK checkout",
        "patched_description": "Patched by the SDK",
        "duplicate": {"name": "SDK checkout (Copy)", "status": "draft", "flag": "sdk-checkout"},
        "launched": {"status": "running", "flag_active": True},
        "timeseries": {"status": "pending", "metric_uuid": "sdk-metric", "days": 1},
        "not_found": {
            "status": 404,
            "type": "invalid_request",
            "code": "not_found",
            "detail": "Not found.",
            "attr": None,
        },
    }


@pytest.fixture
def server(live_server, transactional_db, tmp_path) -> dict:
    """A live server with a project holding one experiment, a real API key, and the schema it serves."""
    project = ProjectFactory()
    user = member_of(project)
    key = api_key_for(user)
    request = urllib.request.Request(f"{live_server.url}/api/schema/?format=json")
    with urllib.request.urlopen(request, timeout=30) as response:
        schema_path = tmp_path / "schema.json"
        schema_path.write_bytes(response.read())
    return {"url": live_server.url, "key": key, "project_id": str(project.pk), "schema": schema_path}


@pytest.fixture
def listed_count(server) -> int:
    """The project already has an experiment, so the list the scenario starts with is not empty."""
    ExperimentFactory(project_id=int(server["project_id"]))
    return 1


def _run(command: list, *, env_extra: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # The virtualenv's bin first: openapi-python-client formats what it generates with its ruff.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    environment = {**os.environ, "PATH": path, **(env_extra or {})}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, cwd=cwd)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _python_client(schema: Path, into: Path):
    """Generate the Python client with openapi-python-client and import it."""
    package_dir = into / PYTHON_CLIENT_PACKAGE
    generator = Path(sys.executable).parent / "openapi-python-client"
    _run([generator, "generate", "--path", schema, "--output-path", package_dir, "--meta", "none", "--overwrite"])
    sys.path.insert(0, str(into))
    try:
        for name in [module for module in sys.modules if module.split(".")[0] == PYTHON_CLIENT_PACKAGE]:
            del sys.modules[name]
        return importlib.import_module(PYTHON_CLIENT_PACKAGE)
    finally:
        sys.path.remove(str(into))


def _python_scenario(client_package, *, url: str, key: str, project_id: str) -> dict:
    api = importlib.import_module(f"{PYTHON_CLIENT_PACKAGE}.api.experiments")
    models = importlib.import_module(f"{PYTHON_CLIENT_PACKAGE}.models")
    for module in ("list", "create", "retrieve", "partial_update", "duplicate", "launch", "timeseries_results"):
        importlib.import_module(f"{api.__name__}.experiments_{module}")
    client = client_package.AuthenticatedClient(base_url=url, token=key, raise_on_unexpected_status=True)

    listed = api.experiments_list.sync(project_id, client=client)
    assert isinstance(listed, models.PaginatedExperimentList)
    created = api.experiments_create.sync(
        project_id,
        client=client,
        body=models.ExperimentRequest(
            name="SDK checkout",
            feature_flag_key="sdk-checkout",
            metrics=[models.ExperimentRequestMetricsItem.from_dict(METRIC)],
            allow_unknown_events=True,
        ),
    )
    assert isinstance(created, models.Experiment), created
    retrieved = api.experiments_retrieve.sync(project_id, created.id, client=client)
    patched = api.experiments_partial_update.sync(
        project_id, created.id, client=client, body=models.PatchedExperimentRequest(description="Patched by the SDK")
    )
    duplicated = api.experiments_duplicate.sync(
        project_id, created.id, client=client, body=models.DuplicateExperimentRequest()
    )
    launched = api.experiments_launch.sync(project_id, created.id, client=client)
    assert isinstance(launched, models.Experiment), launched
    launched_metric = launched.metrics[0]
    timeseries = api.experiments_timeseries_results.sync(
        project_id,
        created.id,
        client=client,
        metric_uuid=launched_metric["uuid"],
        fingerprint=launched_metric["fingerprint"],
    )
    assert isinstance(timeseries, models.TimeseriesResults), timeseries
    missing = api.experiments_retrieve.sync_detailed(project_id, BIG_ID, client=client)
    assert isinstance(missing.parsed, models.Error)
    return {
        "listed_count": listed.count,
        "created": {"name": created.name, "status": created.status, "holdout": created.holdout},
        "retrieved_name": retrieved.name,
        "patched_description": patched.description,
        "duplicate": {"name": duplicated.name, "status": duplicated.status, "flag": duplicated.feature_flag_key},
        "launched": {"status": launched.status, "flag_active": launched.feature_flag.active},
        "timeseries": {
            "status": timeseries.status.value,
            "metric_uuid": timeseries.metric_uuid,
            "days": len(timeseries.timeseries.additional_properties),
        },
        "not_found": {"status": missing.status_code.value, **missing.parsed.to_dict()},
    }


def test_the_generated_python_client_runs_the_scenario(server, listed_count, tmp_path):
    client_package = _python_client(server["schema"], tmp_path)

    summary = _python_scenario(client_package, url=server["url"], key=server["key"], project_id=server["project_id"])

    assert summary == expected_summary(listed_count)


def test_the_generated_typescript_client_type_checks_and_runs_the_scenario(server, listed_count):
    assert (NODE_BIN / "tsc").exists(), "The npm packages are missing: run `npm ci` in tests/sdk (scripts/test does)."
    GENERATED_DIR.mkdir(exist_ok=True)
    types = GENERATED_DIR / "schema.d.ts"
    _run([NODE_BIN / "openapi-typescript", server["schema"], "--default-non-nullable", "false", "-o", types])
    _run([NODE_BIN / "tsc", "--noEmit", "-p", SDK_DIR])
    build = GENERATED_DIR / "build"
    shutil.rmtree(build, ignore_errors=True)
    _run([NODE_BIN / "tsc", "-p", SDK_DIR])

    run = _run(
        [shutil.which("node"), build / "scenario.js"],
        cwd=SDK_DIR,
        env_extra={"BASE_URL": server["url"], "API_KEY": server["key"], "PROJECT_ID": server["project_id"]},
    )

    assert json.loads(run.stdout) == expected_summary(listed_count)
