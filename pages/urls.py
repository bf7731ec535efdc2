"""Results pages: /projects/, /projects/:project_id/experiments/ and each experiment's page and CSV export."""

from django.urls import path

from . import views

app_name = "pages"

urlpatterns = [
    path("projects/", views.project_list, name="projects"),
    path("projects/<int:project_id>/experiments/", views.experiment_list, name="experiments"),
    path("projects/<int:project_id>/experiments/<int:experiment_id>/", views.experiment_detail, name="experiment"),
    path(
        "projects/<int:project_id>/experiments/<int:experiment_id>/results.csv",
        views.experiment_results_csv,
        name="experiment-csv",
    ),
]
