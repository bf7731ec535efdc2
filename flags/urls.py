"""Registers the flag and cohort viewsets under /api/projects/:project_id/."""

from experiments_api.routing import register_project_viewset
from flags.views import CohortViewSet, FeatureFlagViewSet

register_project_viewset("feature_flags", FeatureFlagViewSet, "project_feature_flags")
register_project_viewset("cohorts", CohortViewSet, "project_cohorts")
