"""POST /batch/, /capture/, /e/, /i/v0/e/: events in PostHog's capture format, authenticated by the project token."""

from django.http import HttpRequest, HttpResponse
from rest_framework import status

from events.payloads import payload_events, payload_token, request_payload, request_sent_at
from events.services import events_ingest
from events.views.common import error_response, json_response, project_for_token, sdk_endpoint


@sdk_endpoint
def capture(request: HttpRequest) -> HttpResponse:
    """Store the event(s) of the body; answers `{"status": 1}`.

    Invalid events are skipped and listed under `rejected` ({index, detail}) while the valid ones are stored;
    when no event is valid the answer is 400 with the first one's error (attr `batch__<index>`). Errors: 401 for a
    missing or unknown project token, 400 for a malformed body, 413 for a body over CAPTURE_MAX_BODY_BYTES.
    """
    payload = request_payload(request)
    events = payload_events(payload)
    project = project_for_token(payload_token(payload, events))
    result = events_ingest(project=project, events=events, sent_at=request_sent_at(request, payload))
    if result.rejected and not result.accepted:
        first = result.rejected[0]
        return error_response(
            status.HTTP_400_BAD_REQUEST,
            type="validation_error",
            code="invalid_event",
            detail=first.detail,
            attr=f"batch__{first.index}",
        )
    body: dict = {"status": 1}
    if result.rejected:
        body["rejected"] = [{"index": rejected.index, "detail": rejected.detail} for rejected in result.rejected]
    return json_response(body)
