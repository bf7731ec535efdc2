"""Permissions every project-scoped viewset gets: API-key scopes, then project access."""

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions, permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from experiments_api import messages
from experiments_api.models import PersonalAPIKey, Project, ProjectMembership
from experiments_api.scopes import scopes_grant


def required_scopes_for(view: APIView, request: Request) -> list[str]:
    """The scopes an action needs: its declared `required_scopes`, else read for safe methods, write otherwise."""
    declared = getattr(view, "required_scopes", None)
    if declared:
        return list(declared)
    scope_object = getattr(view, "scope_object", None)
    if not scope_object:
        raise ImproperlyConfigured(
            f'{type(view).__name__} must declare `scope_object` (e.g. scope_object = "experiment") '
            "so API-key scopes can be checked."
        )
    level = "read" if request.method in permissions.SAFE_METHODS else "write"
    return [f"{scope_object}:{level}"]


def ensure_key_has_scope(request: Request, scope: str) -> None:
    """403 when the request's personal API key lacks `scope`; session logins are not scope-limited."""
    if isinstance(request.auth, PersonalAPIKey) and not scopes_grant(request.auth.scopes, scope):
        raise exceptions.PermissionDenied(messages.MISSING_SCOPE.format(scope=scope))


def ensure_key_allows_project(request: Request, project_id: int) -> None:
    """403 when the request's personal API key is limited to other projects (an empty list limits nothing)."""
    key = request.auth
    if isinstance(key, PersonalAPIKey) and key.scoped_projects and project_id not in key.scoped_projects:
        raise exceptions.PermissionDenied(messages.PROJECT_NOT_ALLOWED_FOR_KEY.format(project_id=project_id))


class APIScopePermission(permissions.BasePermission):
    """Personal API keys need the action's scopes; session logins are not scope-limited."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        for scope in required_scopes_for(view, request):
            ensure_key_has_scope(request, scope)
        return True


def requester_is_member(request: Request, project: Project) -> bool:
    """Whether the request's user is a member of `project`: the `requester_is_member` annotation when the view
    loaded the project with it (ProjectScopedViewSet does, in the same query), else a query."""
    annotated = getattr(project, "requester_is_member", None)
    if annotated is not None:
        return annotated
    return ProjectMembership.objects.filter(user=request.user, project=project).exists()


class ProjectAccessPermission(permissions.BasePermission):
    """The project in the URL must exist (404), be allowed for the key (403) and have the user as member (403)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        project = view.project  # raises NotFound for an unknown project
        ensure_key_allows_project(request, project.pk)
        if not requester_is_member(request, project):
            raise exceptions.PermissionDenied(messages.NOT_A_PROJECT_MEMBER)
        return True
