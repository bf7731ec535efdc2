"""Viewset mixins shared by project-scoped resources: PostHog's forbidden DELETE."""

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response


class DestroyNotAllowedMixin:
    """DELETE answers 405 with an empty body, after authentication, scope and project checks have run.

    PostHog soft-deletes these resources with PATCH `{"deleted": true}` instead. The browsable API shows no
    DELETE button for them (`refused_methods`, read by `experiments_api.renderers.BrowsableAPIRenderer`).
    """

    refused_methods = frozenset({"DELETE"})

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        return Response(status=status.HTTP_405_METHOD_NOT_ALLOWED)
