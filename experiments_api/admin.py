"""Django admin for organizations, projects, members and API keys."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from experiments_api.models import Organization, PersonalAPIKey, Project, ProjectMembership, User


class ProjectMembershipInline(admin.TabularInline):
    model = ProjectMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "created_at"]
    search_fields = ["name"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "organization", "timezone", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["api_token"]
    inlines = [ProjectMembershipInline]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["email", "first_name", "last_name", "is_staff", "current_project"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = DjangoUserAdmin.fieldsets + (
        ("Experiments API", {"fields": ("current_project", "is_email_verified", "role_at_organization")}),
    )


@admin.register(PersonalAPIKey)
class PersonalAPIKeyAdmin(admin.ModelAdmin):
    list_display = ["label", "mask_value", "user", "scopes", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["secure_value", "mask_value", "created_at", "last_used_at"]
    search_fields = ["label", "user__email"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        # The raw value must be shown once, which `manage.py create_personal_api_key` does.
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset) -> None:
        from experiments_api.services import personal_api_key_revoke

        for key in queryset:
            personal_api_key_revoke(key=key)
