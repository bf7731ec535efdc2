"""Tenancy (organization → project → members), users and personal API keys."""

import hashlib
import secrets
import uuid as uuid_lib
import zoneinfo

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

PERSONAL_API_KEY_PREFIX = "phx_"
PROJECT_API_TOKEN_PREFIX = "phc_"
# last_used_at is written at most this often, so authentication is not a write on every request.
LAST_USED_AT_RESOLUTION = timezone.timedelta(hours=1)


def generate_distinct_id() -> str:
    return str(uuid_lib.uuid4())


def generate_project_api_token() -> str:
    return PROJECT_API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def validate_timezone_name(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"'{value}' is not a known IANA time zone.")


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid_lib.uuid4, editable=False)
    name = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Project(models.Model):
    """PostHog's "project": the tenant every experiment, flag and event belongs to."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    api_token = models.CharField(max_length=200, unique=True, default=generate_project_api_token)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone_name])
    # Property filters applied when a metric sets `filterTestAccounts` (PostHog's test_account_filters).
    test_account_filters = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.organization})"

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class User(AbstractUser):
    """A Django user with the extra fields PostHog's user object exposes."""

    # The user as nested in other resources (`created_by`): PostHog's UserBasic fields.
    BASIC_FIELDS = (
        "id",
        "uuid",
        "distinct_id",
        "first_name",
        "last_name",
        "email",
        "is_email_verified",
        "hedgehog_config",
        "role_at_organization",
    )

    uuid = models.UUIDField(default=uuid_lib.uuid4, unique=True, editable=False)
    email = models.EmailField(unique=True)
    distinct_id = models.CharField(max_length=200, unique=True, default=generate_distinct_id)
    is_email_verified = models.BooleanField(default=False)
    role_at_organization = models.CharField(max_length=64, blank=True, null=True)
    hedgehog_config = models.JSONField(blank=True, null=True)
    current_project = models.ForeignKey(Project, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    objects = UserManager()

    def __str__(self) -> str:
        return self.email


class ProjectMembership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="project_memberships")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="unique_project_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project}"


def hash_personal_api_key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class PersonalAPIKeyQuerySet(models.QuerySet):
    def active(self) -> "PersonalAPIKeyQuerySet":
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class PersonalAPIKey(models.Model):
    """A user's API key. The value is shown once; only its SHA-256 hash and a short mask are stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="personal_api_keys")
    label = models.CharField(max_length=40, blank=True, default="")
    secure_value = models.CharField(max_length=64, unique=True, editable=False)
    mask_value = models.CharField(max_length=16, editable=False)
    # Empty scopes mean a legacy key that may do everything; "*" is the explicit wildcard.
    scopes = models.JSONField(default=list, blank=True)
    # Empty or None: every project the user can access (as in PostHog); otherwise only these project ids.
    scoped_projects = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = PersonalAPIKeyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.label or 'key'} {self.mask_value}"
