"""Django admin for feature flags and cohorts."""

from django.contrib import admin

from flags.models import Cohort, FeatureFlag


@admin.register(FeatureFlag)
class FeatureFlagAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "project", "active", "deleted", "version", "updated_at"]
    list_filter = ["active", "deleted"]
    search_fields = ["key", "name"]
    readonly_fields = ["version", "created_at", "updated_at"]


@admin.register(Cohort)
class CohortAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "is_static", "deleted", "created_at"]
    search_fields = ["name"]
