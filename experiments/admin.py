"""Django admin for experiments, holdouts, saved metrics and recalculations."""

from django.contrib import admin

from experiments.models import (
    Experiment,
    ExperimentHoldout,
    ExperimentMetricsRecalculation,
    ExperimentSavedMetric,
    ExperimentTimeseriesRecalculation,
)


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "feature_flag", "start_date", "end_date", "archived", "deleted"]
    list_filter = ["archived", "deleted"]
    search_fields = ["name"]
    raw_id_fields = ["feature_flag", "exposure_cohort", "holdout", "created_by"]


@admin.register(ExperimentHoldout)
class ExperimentHoldoutAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "created_at"]
    search_fields = ["name"]


@admin.register(ExperimentSavedMetric)
class ExperimentSavedMetricAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "created_at"]
    search_fields = ["name"]


@admin.register(ExperimentTimeseriesRecalculation, ExperimentMetricsRecalculation)
class RecalculationAdmin(admin.ModelAdmin):
    list_display = ["id", "experiment", "status", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["experiment"]
