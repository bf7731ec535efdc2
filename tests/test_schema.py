"""The OpenAPI 3.1 schema at /api/schema/ validates and tells the truth: bearer auth, the error envelope on every
error status, nullable fields, typed action responses, JSON bodies and readable operation ids; the docs render."""

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


ERROR_REF = {"$ref": "#/components/schemas/Error"}
EXPERIMENTS = "/api/projects/{project_id}/experiments/"
EXPERIMENT = "/api/projects/{project_id}/experiments/{id}/"


def operations(schema: dict):
    for path, path_item in schema["paths"].items():
        for method, operation in path_item.items():
            yield path, method, operation


def response_schema(operation: dict, status: str) -> dict:
    return operation["responses"][status]["content"]["application/json"]["schema"]


def test_the_error_envelope_is_one_component(schema):
    assert schema["components"]["schemas"]["Error"] == {
        "type": "object",
        "description": "PostHog's error envelope, answered by every error of the API.",
        "properties": {
            "type": {
                "type": "string",
                "description": "validation_error, authentication_error, invalid_request, throttled_error or "
                "server_error.",
            },
            "code": {
                "type": "string",
                "description": "A machine-readable code, such as `required`, `not_found`, `throttled`.",
            },
            "detail": {"type": "string", "description": "A human-readable message."},
            "attr": {"type": ["string", "null"], "description": "The field the error is about, if any."},
        },
        "required": ["attr", "code", "detail", "type"],
    }


def test_every_operation_documents_its_errors_with_the_envelope(schema):
    for path, method, operation in operations(schema):
        expected = {"401", "403", "404", "429", "500", "503"} | (
            {"415"} if method in ("post", "put", "patch") else set()
        )
        for status in expected:
            assert response_schema(operation, status) == ERROR_REF, (method, path, status)
        if not (path.endswith("/eligible_feature_flags/")):
            assert response_schema(operation, "400") == ERROR_REF, (method, path)


def test_conflicts_are_documented_where_they_happen(schema):
    assert response_schema(schema["paths"][f"{EXPERIMENT}ship_variant/"]["post"], "409") == ERROR_REF
    flag = schema["paths"]["/api/projects/{project_id}/feature_flags/{id}/"]
    assert response_schema(flag["patch"], "409") == response_schema(flag["put"], "409") == ERROR_REF


@pytest.mark.parametrize("resource", ["experiments", "feature_flags", "cohorts"])
def test_a_forbidden_delete_is_an_empty_405(schema, resource):
    responses = schema["paths"][f"/api/projects/{{project_id}}/{resource}/{{id}}/"]["delete"]["responses"]

    assert "204" not in responses
    assert responses["405"] == {
        "description": 'DELETE is not allowed (empty body): soft-delete with PATCH `{"deleted": true}` instead.'
    }


def test_holdouts_really_delete(schema):
    responses = schema["paths"]["/api/projects/{project_id}/experiment_holdouts/{id}/"]["delete"]["responses"]

    assert responses["204"] == {"description": "No response body"}
    assert "405" not in responses


def test_request_bodies_are_json_and_only_cohort_writes_also_take_multipart(schema):
    media_types = {
        (path, method): list(operation["requestBody"]["content"])
        for path, method, operation in operations(schema)
        if "requestBody" in operation
    }

    assert media_types
    multipart = {key for key, types in media_types.items() if types == ["application/json", "multipart/form-data"]}
    assert multipart == {
        ("/api/projects/{project_id}/cohorts/", "post"),
        ("/api/projects/{project_id}/cohorts/{id}/", "put"),
        ("/api/projects/{project_id}/cohorts/{id}/", "patch"),
    }
    assert all(types == ["application/json"] for key, types in media_types.items() if key not in multipart)


def test_experiment_responses_declare_nullable_fields_and_every_field_required(schema):
    experiment = schema["components"]["schemas"]["Experiment"]

    assert experiment["properties"]["holdout"]["oneOf"] == [
        {"$ref": "#/components/schemas/ExperimentHoldoutSummary"},
        {"type": "null"},
    ]
    assert experiment["properties"]["exposure_cohort"]["type"] == ["integer", "null"]
    assert experiment["properties"]["created_by"]["oneOf"][1] == {"type": "null"}
    assert experiment["properties"]["metrics"]["type"] == "array"
    assert experiment["properties"]["exposure_criteria"]["type"] == ["object", "null"]
    assert set(experiment["required"]) == set(experiment["properties"])


def test_query_answers_200_with_one_schema_per_kind(schema):
    operation = schema["paths"]["/api/projects/{project_id}/query/"]["post"]

    assert operation["operationId"] == "query_run"
    assert "201" not in operation["responses"]
    result = response_schema(operation, "200")
    assert result == {"$ref": "#/components/schemas/QueryResult"}
    assert schema["components"]["schemas"]["QueryResult"]["discriminator"] == {
        "propertyName": "kind",
        "mapping": {
            "ExperimentQuery": "#/components/schemas/ExperimentQueryResult",
            "ExperimentExposureQuery": "#/components/schemas/ExperimentExposureQueryResult",
        },
    }


def test_the_exposure_cohort_answer_wraps_the_cohort(schema):
    operation = schema["paths"][f"{EXPERIMENT}create_exposure_cohort_for_experiment/"]["post"]

    assert response_schema(operation, "201") == {"$ref": "#/components/schemas/ExposureCohortResult"}
    assert schema["components"]["schemas"]["ExposureCohortResult"]["properties"] == {
        "cohort": {"$ref": "#/components/schemas/Cohort"}
    }


def test_timeseries_results_require_their_parameters_and_are_typed(schema):
    operation = schema["paths"][f"{EXPERIMENT}timeseries_results/"]["get"]

    query = {
        parameter["name"]: parameter["required"] for parameter in operation["parameters"] if parameter["in"] == "query"
    }
    assert query == {"metric_uuid": True, "fingerprint": True}
    assert response_schema(operation, "200") == {"$ref": "#/components/schemas/TimeseriesResults"}


@pytest.mark.parametrize(
    ("path", "method", "component"),
    [
        (f"{EXPERIMENT}recalculate_timeseries/", "post", "Recalculation"),
        (f"{EXPERIMENT}metrics_recalculation/", "post", "MetricsRecalculation"),
        (f"{EXPERIMENTS}stats/", "get", "VelocityStats"),
        ("/api/feature_flag/local_evaluation/", "get", "LocalEvaluation"),
        ("/flags/definitions/", "get", "LocalEvaluation"),
    ],
)
def test_action_responses_are_typed(schema, path, method, component):
    assert response_schema(schema["paths"][path][method], "200") == {"$ref": f"#/components/schemas/{component}"}


def test_operation_ids_are_unique_and_named_after_their_resource(schema):
    ids = {(path, method): operation["operationId"] for path, method, operation in operations(schema)}

    assert len(set(ids.values())) == len(ids)
    assert ids[(EXPERIMENTS, "get")] == "experiments_list"
    assert ids[(f"{EXPERIMENT}launch/", "post")] == "experiments_launch"
    assert ids[("/api/feature_flag/local_evaluation/", "get")] == "feature_flags_local_evaluation"
    assert ids[("/flags/definitions/", "get")] == "feature_flags_definitions"
    for (path, method), operation_id in ids.items():
        [tag] = schema["paths"][path][method]["tags"]
        assert operation_id.startswith(f"{tag}_"), (path, method, operation_id)


def test_result_objects_declare_health_breakdowns_and_the_analysis_fields_and_nothing_else(schema):
    components = schema["components"]["schemas"]
    result = components["MetricResult"]

    assert result["additionalProperties"] is False
    assert result["properties"]["health"] == {
        "allOf": [{"$ref": "#/components/schemas/ResultHealth"}],
        "description": "Absent from results stored before health checks.",
    }
    assert result["properties"]["breakdown_results"]["items"] == {"$ref": "#/components/schemas/BreakdownResult"}
    assert set(components["ResultHealth"]["properties"]) == {"findings", "srm", "multiple_exposures"}
    assert set(components["BreakdownResult"]["required"]) == {
        "breakdown_value", "baseline", "variant_results", "exploratory",
    }  # fmt: skip
    assert components["HealthFinding"]["properties"]["severity"] == {"$ref": "#/components/schemas/SeverityEnum"}
    assert components["HealthStatusEnum"]["enum"] == ["healthy", "unhealthy", "not-enough-traffic"]
    variant = components["VariantResult"]
    assert variant["additionalProperties"] is False
    assert {"quantile", "quantile_nstar", "n_clusters", "p_value_adjusted", "confidence_interval_adjusted"} <= set(
        variant["properties"]
    )


def test_the_analysis_options_of_requests_are_typed(schema):
    experiment = schema["components"]["schemas"]["ExperimentRequest"]["properties"]
    metric = experiment["metrics"]["items"]
    stats_config = experiment["stats_config"]["properties"]
    bandit = experiment["parameters"]["properties"]["bandit"]["oneOf"][0]

    assert metric["properties"]["quantile"] == {
        "type": "number",
        "exclusiveMinimum": 0,
        "exclusiveMaximum": 1,
        "description": "Quantile metrics: the quantile, 0 < q < 1 (0.9 for P90).",
    }
    prior = metric["properties"]["prior"]["oneOf"][0]
    assert prior["properties"]["stddev"] == {"type": "number", "minimum": 1e-100, "maximum": 1e100, "default": 0.3}
    breakdowns = metric["properties"]["breakdownFilter"]["oneOf"][0]["properties"]["breakdowns"]["oneOf"][0]
    assert (breakdowns["maxItems"], breakdowns["items"]["required"]) == (3, ["property"])
    assert stats_config["frequentist"]["oneOf"][0]["properties"]["alternative"]["oneOf"][0]["enum"] == [
        "two_sided", "greater", "less",
    ]  # fmt: skip
    assert stats_config["multiple_testing"]["oneOf"][0]["properties"]["method"]["oneOf"][0]["enum"] == ["holm", "bh"]
    assert stats_config["bayesian"]["oneOf"][0]["properties"]["prior"]["oneOf"][0] == prior
    assert bandit["additionalProperties"] is False
    assert set(bandit["properties"]) == {
        "decision_metric_uuid", "top_two", "min_variation_weight", "burn_in_hours", "update_interval_hours", "seed",
    }  # fmt: skip
    query_metric = schema["components"]["schemas"]["ExperimentQueryNodeRequest"]["properties"]["metric"]
    assert query_metric["properties"] == metric["properties"]
