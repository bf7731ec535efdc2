"""Project scoping: the one base viewset every `/api/projects/:project_id/...` viewset inherits.

Subclasses implement `safely_get_queryset`; `get_queryset` (which filters by project) and
`get_permissions` (which always include authentication, scope and project checks) cannot be overridden.
"""

from functools import cached_property

from django.db.models import Exists, OuterRef
from rest_framework import exceptions, permissions, routers, viewsets
from rest_framework.request import Request

from experiments_api import messages
from experiments_api.models import Project, ProjectMembership
from experiments_api.permissions import APIScopePermission, ProjectAccessPermission

CURRENT_PROJECT_ALIAS = "@current"
_FINAL_METHODS = ("get_queryset", "get_permissions", "initial")


class ProjectScopedViewSetMixin:
    """Resolves the URL's project and confines every queryset to it."""

    scope_object: str | None = None
    # Set per action with @action(required_scopes=[...]) where the scope is not <scope_object>:<read|write>.
    required_scopes: list[str] | None = None
    # The name of the model's foreign key to Project; querysets are filtered on it.
    project_field = "project"
    extra_permission_classes: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        overridden = [name for name in _FINAL_METHODS if name in cls.__dict__]
        if overridden:
            raise TypeError(
                f"{cls.__name__} overrides {', '.join(overridden)}, which would bypass project scoping. "
                "Override safely_get_queryset(queryset) or set extra_permission_classes instead."
            )

    request: Request
    kwargs: dict

    @cached_property
    def project(self) -> Project:
        raw_id = self.kwargs.get("project_id")
        if raw_id == CURRENT_PROJECT_ALIAS:
            project_id = getattr(self.request.user, "current_project_id", None)
        else:
            # isdigit() alone also accepts digits int() refuses, such as "²".
            project_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() else None
        # The requester's membership comes with the project (one round trip), for ProjectAccessPermission.
        membership = ProjectMembership.objects.filter(project=OuterRef("pk"), user_id=self.request.user.pk)
        project = (
            Project.objects.select_related("organization")
            .annotate(requester_is_member=Exists(membership))
            .filter(pk=project_id)
            .first()
        )
        if project is None:
            raise exceptions.NotFound(messages.PROJECT_NOT_FOUND)
        return project

    def get_permissions(self):
        permission_classes = [
            permissions.IsAuthenticated,
            APIScopePermission,
            ProjectAccessPermission,
            *self.extra_permission_classes,
        ]
        return [permission() for permission in permission_classes]

    def get_queryset(self):
        queryset = super().get_queryset().filter(**{self.project_field: self.project})
        return self.safely_get_queryset(queryset)

    def safely_get_queryset(self, queryset):
        return queryset

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        if "project_id" in self.kwargs and not getattr(self, "swagger_fake_view", False):
            context["project"] = self.project
        return context


class ProjectScopedViewSet(ProjectScopedViewSetMixin, viewsets.GenericViewSet):
    """Base for project-scoped viewsets; add DRF mixins for the actions a resource supports."""


class OptionalSlashRouter(routers.SimpleRouter):
    """PostHog's routes accept a trailing slash or none."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"  # DRF's constructor only takes a boolean


projects_router = OptionalSlashRouter()
PROJECT_PREFIX = r"projects/(?P<project_id>[^/]+)"


def register_project_viewset(resource: str, viewset: type, basename: str) -> None:
    """Register `viewset` at /api/projects/:project_id/<resource>/; it must inherit ProjectScopedViewSetMixin."""
    if not issubclass(viewset, ProjectScopedViewSetMixin):
        raise TypeError(f"{viewset.__name__} must inherit ProjectScopedViewSetMixin to be registered under a project.")
    projects_router.register(f"{PROJECT_PREFIX}/{resource}", viewset, basename=basename)
