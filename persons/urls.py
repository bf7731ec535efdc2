"""Registers the persons viewset under /api/projects/:project_id/."""

from experiments_api.routing import register_project_viewset
from persons.api import PersonViewSet

register_project_viewset("persons", PersonViewSet, "project_persons")
