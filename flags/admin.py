"""Django admin for feature flags and cohorts."""

from django.contrib import admin

from flags.cache import project_flags_changed
from flags.models import Cohort, FeatureFlag


@admin.register(FeatureFlag)
class FeatureFlagAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "project", "active", "deleted", "version", "updated_at"]
    list_filter = ["active", "deleted"]
    search_fields = ["key", "name"]
    readonly_fields = ["version", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        project_flags_changed(obj.project_id)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        project_flags_changed(obj.project_id)

    def delete_queryset(self, request, queryset):
        project_ids = set(queryset.values_list("project_id", flat=True))
        super().delete_queryset(request, queryset)
        for project_id in project_ids:
            project_flags_changed(project_id)


@admin.register(Cohort)
class CohortAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "is_static", "deleted", "created_at"]
    search_fields = ["name"]
