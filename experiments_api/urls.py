"""URL configuration: the index page, the project-scoped API, the schema and docs, admin, health, results pages, and
JSON errors."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

import experiments.urls  # noqa: F401  (registers the experiments viewsets)
import flags.urls  # noqa: F401  (registers the flag and cohort viewsets)
import persons.urls  # noqa: F401  (registers the persons viewset)
from experiments_api import views
from experiments_api.exceptions import not_found_view
from experiments_api.routing import projects_router

urlpatterns = [
    path("", views.index, name="index"),
    path("_health", views.health, name="health"),
    path("api/", include(projects_router.urls)),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/schema/swagger-ui/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(
        r"^api/schema/redoc/?$",
        SpectacularRedocView.as_view(url_name="schema", template_name="experiments_api/redoc.html"),
        name="redoc",
    ),
    path("api-auth/", include("rest_framework.urls")),
    path("admin/", admin.site.urls),
    path("", include("pages.urls")),
    # The endpoints PostHog's SDKs call: capture, flag evaluation, local evaluation.
    path("", include("events.urls")),
    # Anything else is a JSON 404 in PostHog's envelope, also under DEBUG.
    re_path(r"^.*$", not_found_view),
]

handler400 = "experiments_api.exceptions.bad_request_view"
handler404 = "experiments_api.exceptions.not_found_view"
handler500 = "experiments_api.exceptions.server_error_view"
