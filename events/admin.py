"""Django admin for event definitions (events themselves are too many to browse here)."""

from django.contrib import admin

from events.models import EventDefinition


@admin.register(EventDefinition)
class EventDefinitionAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "first_seen_at", "last_seen_at"]
    search_fields = ["name"]
