"""Routes of the SDK endpoints (capture, flag evaluation, local evaluation), outside the project-scoped API."""

from django.urls import re_path

from events.views.capture import capture
from events.views.flags import LocalEvaluationView, decide, flags

urlpatterns = [
    re_path(r"^batch/?$", capture, name="capture-batch"),
    re_path(r"^capture/?$", capture, name="capture"),
    re_path(r"^e/?$", capture, name="capture-e"),
    re_path(r"^i/v0/e/?$", capture, name="capture-i-v0-e"),
    re_path(r"^flags/definitions/?$", LocalEvaluationView.as_view(), name="flag-definitions"),
    re_path(r"^flags/?$", flags, name="flags"),
    re_path(r"^decide/?$", decide, name="decide"),
    re_path(r"^api/feature_flag/local_evaluation/?$", LocalEvaluationView.as_view(), name="local-evaluation"),
]
