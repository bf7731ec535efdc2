"""Business rules for tenancy and personal API keys."""

import secrets

from django.db import transaction
from django.utils import timezone

from experiments_api.models import (
    LAST_USED_AT_RESOLUTION,
    PERSONAL_API_KEY_PREFIX,
    Organization,
    PersonalAPIKey,
    Project,
    ProjectMembership,
    User,
    hash_personal_api_key,
)
from experiments_api.scopes import validate_scopes

DEFAULT_ORGANIZATION_NAME = "Default organization"
DEFAULT_PROJECT_NAME = "Default project"


def personal_api_key_create(
    *, user: User, scopes: list[str], scoped_projects: list[int] | None = None, label: str = ""
) -> tuple[PersonalAPIKey, str]:
    """Create a key and return it with its raw value, which is never stored and cannot be shown again."""
    validate_scopes(scopes)
    raw_value = PERSONAL_API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = PersonalAPIKey.objects.create(
        user=user,
        label=label,
        secure_value=hash_personal_api_key(raw_value),
        mask_value=f"{raw_value[:4]}...{raw_value[-4:]}",
        scopes=scopes,
        scoped_projects=scoped_projects,
    )
    return key, raw_value


def personal_api_key_revoke(*, key: PersonalAPIKey) -> None:
    PersonalAPIKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def personal_api_key_mark_used(*, key: PersonalAPIKey) -> None:
    """Record use at most once per LAST_USED_AT_RESOLUTION, with a conditional update (no read-modify-write)."""
    now = timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_AT_RESOLUTION:
        return
    PersonalAPIKey.objects.filter(pk=key.pk).exclude(last_used_at__gt=now - LAST_USED_AT_RESOLUTION).update(
        last_used_at=now
    )


@transaction.atomic
def member_with_project_ensure(
    *, email: str, organization_name: str | None = None, project_name: str | None = None
) -> tuple[User, Project]:
    """Get or create the user, organization and project by name, and make the user a member of the project."""
    organization, _ = Organization.objects.get_or_create(name=organization_name or DEFAULT_ORGANIZATION_NAME)
    project, _ = Project.objects.get_or_create(organization=organization, name=project_name or DEFAULT_PROJECT_NAME)
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(username=email, email=email)
    ProjectMembership.objects.get_or_create(user=user, project=project)
    if user.current_project_id is None:
        user.current_project = project
        user.save(update_fields=["current_project"])
    return user, project
