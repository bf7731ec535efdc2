"""Viewset mixins shared by project-scoped resources: service-backed writes and PostHog's forbidden DELETE."""

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response


class ServiceWriteMixin:
    """POST, PUT and PATCH hand the raw body to the resource's services, which validate and save it.

    The services validate themselves because other code (experiment create, for one) calls them with plain
    dicts. Subclasses implement `create_object(data)` and `update_object(instance, data, partial=...)`; the saved
    object is read back through `get_queryset()` so the response carries the same prefetches as a retrieve.
    """

    def create_object(self, data: dict):
        raise NotImplementedError(f"{type(self).__name__} must implement create_object(data).")

    def update_object(self, instance, data: dict, *, partial: bool):
        raise NotImplementedError(f"{type(self).__name__} must implement update_object(instance, data, partial=...).")

    def create(self, request: Request, *args, **kwargs) -> Response:
        instance = self.create_object(request.data)
        return Response(self._serialize_fresh(instance), status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args, **kwargs) -> Response:
        instance = self.update_object(self.get_object(), request.data, partial=kwargs.pop("partial", False))
        return Response(self._serialize_fresh(instance))

    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)

    def _serialize_fresh(self, instance) -> dict:
        return self.get_serializer(self.get_queryset().get(pk=instance.pk)).data


class DestroyNotAllowedMixin:
    """DELETE answers 405 with an empty body, after authentication, scope and project checks have run.

    PostHog soft-deletes these resources with PATCH `{"deleted": true}` instead. The browsable API shows no
    DELETE button for them (`refused_methods`, read by `experiments_api.renderers.BrowsableAPIRenderer`).
    """

    refused_methods = frozenset({"DELETE"})

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        return Response(status=status.HTTP_405_METHOD_NOT_ALLOWED)
