"""Flag evaluation for SDKs: POST /flags/ and /decide/ (remote), and the flag definitions for local evaluation."""

import uuid
from collections.abc import Mapping
from functools import cached_property

from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events import messages
from events.payloads import PayloadError, payload_token, request_payload
from events.selectors import flags_for_sdk, project_for_api_token
from events.validation import storable_text
from events.views.common import json_response, project_for_token, sdk_endpoint
from experiments_api import messages as api_messages
from experiments_api.models import Project
from experiments_api.permissions import APIScopePermission, ProjectAccessPermission
from experiments_api.throttling import SDKThrottle
from flags.evaluation import FlagMatch, flag_evaluate, flag_for_local_evaluation
from flags.serializers import LocalEvaluationSerializer
from persons.models import MAX_DISTINCT_ID_LENGTH
from persons.services.flags import cohorts_for_local_evaluation, flag_person_context

# From these API versions on, answers carry the detailed `flags` map next to `featureFlags`.
FLAGS_DETAILED_FROM_VERSION = 2
DECIDE_DETAILED_FROM_VERSION = 4


@sdk_endpoint
def flags(request: HttpRequest) -> HttpResponse:
    """POST /flags/?v=2: the project's active flags evaluated for `distinct_id` (with `person_properties`).

    Answers `featureFlags` (key → variant or boolean) and `featureFlagPayloads`, and from v=2 `flags`
    (key → {key, enabled, variant, reason, metadata}). 401 for a missing or unknown token, 400 for a body that is
    not an object, lacks `distinct_id`, or has `person_properties` that are not an object.
    """
    return json_response(_evaluation_body(request, detailed_from=FLAGS_DETAILED_FROM_VERSION))


@sdk_endpoint
def decide(request: HttpRequest) -> HttpResponse:
    """POST /decide/?v=3: the older endpoint, with the same evaluation; `flags` only from v=4."""
    body = _evaluation_body(request, detailed_from=DECIDE_DETAILED_FROM_VERSION)
    body.update({"supportedCompression": ["gzip", "gzip-js"], "sessionRecording": False})
    return json_response(body)


def _evaluation_body(request: HttpRequest, *, detailed_from: int) -> dict:
    payload = request_payload(request)
    if not isinstance(payload, dict):
        raise PayloadError(messages.REQUEST_NOT_OBJECT, code="invalid_input")
    project = project_for_token(payload_token(payload))
    distinct_id, person_properties, flag_keys = _evaluation_input(payload)
    candidates = [flag for flag in flags_for_sdk(project=project) if flag_keys is None or flag["key"] in flag_keys]
    person = flag_person_context(
        project_id=project.pk,
        distinct_id=distinct_id,
        sent_properties=person_properties,
        flags=candidates,
        anon_distinct_id=_anon_distinct_id(payload),
    )
    evaluated = [
        (
            flag,
            flag_evaluate(
                flag,
                distinct_id=person.hash_keys.get(flag["key"], distinct_id),
                person_properties=person.properties,
                cohort_ids=person.cohort_ids,
            ),
        )
        for flag in candidates
    ]
    body = {
        "featureFlags": {flag["key"]: match.value for flag, match in evaluated},
        "featureFlagPayloads": {
            flag["key"]: match.payload for flag, match in evaluated if match.enabled and match.payload is not None
        },
        "errorsWhileComputingFlags": False,
        "requestId": str(uuid.uuid4()),
    }
    if _api_version(request) >= detailed_from:
        body["flags"] = {flag["key"]: _flag_detail(flag, match) for flag, match in evaluated}
    return body


def _evaluation_input(payload: Mapping) -> tuple[str, dict, set[str] | None]:
    distinct_id = payload.get("distinct_id")
    if isinstance(distinct_id, int | float) and not isinstance(distinct_id, bool):
        distinct_id = str(distinct_id)
    if not isinstance(distinct_id, str) or not distinct_id:
        raise _invalid(messages.DISTINCT_ID_REQUIRED, attr="distinct_id")
    # Bucket on the distinct id as capture stores it, so flags and stored events agree.
    distinct_id = storable_text(distinct_id)
    person_properties = payload.get("person_properties") or {}
    if not isinstance(person_properties, dict):
        raise _invalid(messages.PERSON_PROPERTIES_NOT_OBJECT, attr="person_properties")
    flag_keys = payload.get("flag_keys_to_evaluate")
    if flag_keys is not None and not (isinstance(flag_keys, list) and all(isinstance(k, str) for k in flag_keys)):
        raise _invalid(messages.FLAG_KEYS_NOT_LIST, attr="flag_keys_to_evaluate")
    # SDKs evaluating locally see the distinct id as a person property too.
    return distinct_id, {"distinct_id": distinct_id, **person_properties}, None if flag_keys is None else set(flag_keys)


def _anon_distinct_id(payload: Mapping) -> str | None:
    """`$anon_distinct_id` (or `anon_distinct_id`): the visitor's id before login, for experience continuity."""
    value = payload.get("$anon_distinct_id", payload.get("anon_distinct_id"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise _invalid(messages.ANON_DISTINCT_ID_NOT_STRING, attr="$anon_distinct_id")
    return storable_text(value)[:MAX_DISTINCT_ID_LENGTH] if value else None


def _invalid(message: str, *, attr: str) -> PayloadError:
    return PayloadError(message, code="invalid_input", error_type="validation_error", attr=attr)


def _api_version(request: HttpRequest) -> int:
    version = request.GET.get("v", "")
    return int(version) if version.isascii() and version.isdigit() else 1


def _flag_detail(flag: Mapping, match: FlagMatch) -> dict:
    return {
        "key": flag["key"],
        "enabled": match.enabled,
        "variant": match.variant,
        "reason": {
            "code": str(match.reason),
            "condition_index": match.condition_index,
            "description": match.description,
        },
        "metadata": {
            "id": flag["id"],
            "version": flag["version"],
            "description": flag["name"],
            "payload": match.payload,
        },
    }


class LocalEvaluationView(APIView):
    """GET /api/feature_flag/local_evaluation/?token=phc_… (also /flags/definitions): the project's flag
    definitions for SDKs that evaluate flags locally.

    Needs a personal API key with `feature_flag:read` whose user is a member of the project. Without `token`, the
    key's current project is used. Flags an SDK could not evaluate exactly as this server does are left out, so
    the SDK asks the server for them. 401 for an unknown token, 403 without the scope or project access. Rate
    limited like the API, but an unreachable cache lets requests through rather than answering 503.
    """

    permission_classes = [permissions.IsAuthenticated, APIScopePermission, ProjectAccessPermission]
    throttle_classes = [SDKThrottle]
    required_scopes = ["feature_flag:read"]

    @cached_property
    def project(self) -> Project:
        token = self.request.query_params.get("token")
        if token:
            project = project_for_api_token(token)
            if project is None:
                raise exceptions.AuthenticationFailed(messages.TOKEN_INVALID)
            return project
        project = getattr(self.request.user, "current_project", None)
        if project is None:
            raise exceptions.NotFound(api_messages.PROJECT_NOT_FOUND)
        return project

    @extend_schema(
        parameters=[OpenApiParameter("token", str, description="The project API token (phc_…).")],
        responses={200: LocalEvaluationSerializer},
        tags=["feature_flags"],
    )
    def get(self, request: Request) -> Response:
        flags = flags_for_sdk(project=self.project, include_inactive=True)
        definitions = [flag_for_local_evaluation(flag) for flag in flags]
        return Response(
            {
                "flags": [{**flag, "team_id": self.project.pk} for flag in definitions if flag is not None],
                "group_type_mapping": {},
                "cohorts": cohorts_for_local_evaluation(project_id=self.project.pk, flags=flags),
            }
        )
