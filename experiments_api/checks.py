"""System check: every viewset registered under a project declares its scope object (fails at start-up)."""

from django.core import checks


@checks.register(checks.Tags.security)
def check_project_viewsets_declare_scope(app_configs, **kwargs) -> list[checks.CheckMessage]:
    from experiments_api import urls  # noqa: F401  (importing the URLconf registers the viewsets)
    from experiments_api.routing import ProjectScopedViewSetMixin, projects_router

    errors = []
    for prefix, viewset, _basename in projects_router.registry:
        if not issubclass(viewset, ProjectScopedViewSetMixin):
            errors.append(
                checks.Error(
                    f"{viewset.__name__} at {prefix} does not inherit ProjectScopedViewSetMixin.",
                    id="api.E001",
                )
            )
        elif not viewset.scope_object:
            errors.append(
                checks.Error(
                    f"{viewset.__name__} at {prefix} does not declare scope_object.",
                    hint='Set scope_object = "<object>" so API-key scopes are enforced.',
                    id="api.E002",
                )
            )
    return errors
