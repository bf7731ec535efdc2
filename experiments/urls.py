"""Registers the experiment viewsets under /api/projects/:project_id/."""

from experiments.api.experiments import ExperimentViewSet
from experiments.api.holdouts import ExperimentHoldoutViewSet
from experiments.api.query import QueryViewSet
from experiments.api.saved_metrics import ExperimentSavedMetricViewSet
from experiments_api.routing import register_project_viewset

register_project_viewset("experiment_holdouts", ExperimentHoldoutViewSet, "project_experiment_holdouts")
register_project_viewset("experiment_saved_metrics", ExperimentSavedMetricViewSet, "project_experiment_saved_metrics")
register_project_viewset("experiments", ExperimentViewSet, "project_experiments")
register_project_viewset("query", QueryViewSet, "project_query")
