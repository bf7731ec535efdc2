"""Registers the experiment viewsets under /api/projects/:project_id/."""

from experiments.holdouts import ExperimentHoldoutViewSet
from experiments.query_views import QueryViewSet
from experiments.saved_metrics import ExperimentSavedMetricViewSet
from experiments.views import ExperimentViewSet
from experiments_api.routing import register_project_viewset

register_project_viewset("experiment_holdouts", ExperimentHoldoutViewSet, "project_experiment_holdouts")
register_project_viewset("experiment_saved_metrics", ExperimentSavedMetricViewSet, "project_experiment_saved_metrics")
register_project_viewset("experiments", ExperimentViewSet, "project_experiments")
register_project_viewset("query", QueryViewSet, "project_query")
