"""App config for the project-level models (tenancy, users, API keys)."""

from django.apps import AppConfig


class ExperimentsApiConfig(AppConfig):
    name = "experiments_api"
    verbose_name = "Organizations, projects and API keys"

    def ready(self) -> None:
        from experiments_api import checks, schema  # noqa: F401  (register the system check and OpenAPI extension)
