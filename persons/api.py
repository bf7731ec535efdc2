"""HTTP endpoints of persons under /api/projects/:project_id/persons/ (PostHog's persons API)."""

import uuid

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from experiments_api.pagination import LimitOffsetPagination
from experiments_api.routing import ProjectScopedViewSet
from persons.messages import CREATE_NOT_ALLOWED, NOT_A_PERSON_ID, PERSON_NOT_FOUND
from persons.models import Person
from persons.selectors import persons_filtered, persons_with_distinct_ids
from persons.serializers import (
    DeletePropertySerializer,
    PersonDeleteParamsSerializer,
    PersonDetailSerializer,
    PersonListParamsSerializer,
    PersonPropertiesSerializer,
    PersonSerializer,
    UpdatePropertySerializer,
)
from persons.services.api import person_delete, person_properties_set, person_property_delete

DEFAULT_PAGE_SIZE = 100


class PersonPagination(LimitOffsetPagination):
    """Pages of persons, 100 by default (PostHog's page size for persons)."""

    default_limit = DEFAULT_PAGE_SIZE


def person_lookup(queryset: QuerySet[Person], raw_id: str) -> Person:
    """A person by integer pk or uuid; anything else is the 400 PostHog answers for a distinct id."""
    if raw_id.isascii() and raw_id.isdigit():
        found = queryset.filter(pk=int(raw_id)).first()
    else:
        try:
            found = queryset.filter(uuid=uuid.UUID(raw_id)).first()
        except ValueError:
            raise exceptions.ValidationError({"id": [exceptions.ErrorDetail(NOT_A_PERSON_ID, "invalid_id")]}) from None
    if found is None:
        raise exceptions.NotFound(PERSON_NOT_FOUND)
    return found


class PersonViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    """Persons: created by ingestion ($identify and every event), read and changed here. Property changes are
    sent as events for the person's first distinct id and answer 202; DELETE removes the person (202)."""

    scope_object = "person"
    queryset = Person.objects.all()
    serializer_class = PersonSerializer
    pagination_class = PersonPagination

    def safely_get_queryset(self, queryset):
        return persons_with_distinct_ids(project_id=self.project.pk).filter(pk__in=queryset.values("pk"))

    def get_serializer_class(self):
        return PersonDetailSerializer if self.action == "retrieve" else PersonSerializer

    def get_object(self) -> Person:
        person = person_lookup(self.get_queryset(), self.kwargs["pk"])
        self.check_object_permissions(self.request, person)
        return person

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        params = PersonListParamsSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return persons_filtered(queryset, **params.validated_data)

    @extend_schema(parameters=[PersonListParamsSerializer])
    def list(self, request: Request, *args, **kwargs) -> Response:
        """Newest first; filters `distinct_id`, `email`, `search`, `properties` (JSON list), `cohort`."""
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None, responses={405: OpenApiResponse(description=CREATE_NOT_ALLOWED)})
    def create(self, request: Request, *args, **kwargs) -> Response:
        """Not allowed: persons come from $identify events (405). A malformed body is refused first (400), as on
        every write."""
        _ = request.data  # parsing raises for a malformed body
        raise exceptions.MethodNotAllowed("POST", detail=CREATE_NOT_ALLOWED)

    @extend_schema(request=PersonPropertiesSerializer, responses={202: None})
    def update(self, request: Request, *args, **kwargs) -> Response:
        """Set `properties` on the person (a `$set` event); 202."""
        body = PersonPropertiesSerializer(data=request.data)  # read (a malformed body refused) before the lookup
        person = self.get_object()
        body.is_valid(raise_exception=True)
        person_properties_set(person=person, properties=body.validated_data["properties"])
        return Response(status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=PersonPropertiesSerializer, responses={202: None})
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        """As PUT."""
        return self.update(request, *args, **kwargs)

    @extend_schema(parameters=[PersonDeleteParamsSerializer], responses={202: None})
    def destroy(self, request: Request, *args, **kwargs) -> Response:
        """Delete the person, its distinct ids and memberships; `?delete_events=true` deletes its events too."""
        person = self.get_object()
        params = PersonDeleteParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        person_delete(person=person, delete_events=params.validated_data["delete_events"])
        return Response(status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=UpdatePropertySerializer, responses={202: None})
    @action(detail=True, methods=["post"])
    def update_property(self, request: Request, *args, **kwargs) -> Response:
        """Set one property `{key, value}` (a `$set` event); 202."""
        body = UpdatePropertySerializer(data=request.data)  # read (a malformed body refused) before the lookup
        person = self.get_object()
        body.is_valid(raise_exception=True)
        person_properties_set(person=person, properties={body.validated_data["key"]: body.validated_data["value"]})
        return Response(status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=DeletePropertySerializer, responses={201: None})
    @action(detail=True, methods=["post"])
    def delete_property(self, request: Request, *args, **kwargs) -> Response:
        """Remove one property `{"$unset": key}` (a `$delete_person_property` event); 201 `{"success": true}`."""
        body = DeletePropertySerializer(data=request.data)  # read (a malformed body refused) before the lookup
        person = self.get_object()
        body.is_valid(raise_exception=True)
        person_property_delete(person=person, key=body.validated_data["unset"])
        return Response({"success": True}, status=status.HTTP_201_CREATED)
