"""Feature flags and cohorts: what experiments target their users with."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from experiments_api.models import Project

FLAG_KEY_PATTERN = r"^[a-zA-Z0-9_-]+$"


class CreationContext:
    """Where a flag was created from; experiments create theirs with EXPERIMENTS."""

    FEATURE_FLAGS = "feature_flags"
    EXPERIMENTS = "experiments"
    SURVEYS = "surveys"
    EARLY_ACCESS_FEATURES = "early_access_features"
    WEB_EXPERIMENTS = "web_experiments"
    PRODUCT_TOURS = "product_tours"

    choices = [FEATURE_FLAGS, EXPERIMENTS, SURVEYS, EARLY_ACCESS_FEATURES, WEB_EXPERIMENTS, PRODUCT_TOURS]


class EvaluationRuntime(models.TextChoices):
    SERVER = "server"
    CLIENT = "client"
    ALL = "all"


class FeatureFlagQuerySet(models.QuerySet):
    def alive(self) -> "FeatureFlagQuerySet":
        return self.filter(deleted=False)


class FeatureFlag(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="feature_flags")
    key = models.CharField(max_length=400)
    name = models.TextField(blank=True, default="")
    # {"groups": [...release conditions], "multivariate": {"variants": [...]}, "payloads": {...},
    #  "aggregation_group_type_index": int|None, "holdout_groups": [...] | None}
    filters = models.JSONField(default=dict)
    active = models.BooleanField(default=True)
    deleted = models.BooleanField(default=False)
    ensure_experience_continuity = models.BooleanField(default=False)
    evaluation_runtime = models.CharField(
        max_length=10, choices=EvaluationRuntime.choices, default=EvaluationRuntime.ALL
    )
    tags = models.JSONField(default=list, blank=True)
    evaluation_tags = models.JSONField(default=list, blank=True)
    # Incremented on every change; writers compare it to detect concurrent edits.
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    last_modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    creation_context = models.CharField(max_length=40, blank=True, default="feature_flags")

    objects = FeatureFlagQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "key"], condition=Q(deleted=False), name="unique_live_flag_key_per_project"
            )
        ]
        indexes = [models.Index(fields=["project", "-created_at"])]

    def __str__(self) -> str:
        return self.key

    @property
    def variants(self) -> list[dict]:
        return ((self.filters or {}).get("multivariate") or {}).get("variants") or []


class Cohort(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="cohorts")
    name = models.CharField(max_length=400)
    description = models.CharField(max_length=1000, blank=True, default="")
    filters = models.JSONField(default=dict, blank=True)
    is_static = models.BooleanField(default=False)
    is_calculating = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    count = models.PositiveIntegerField(null=True, blank=True)
    last_calculation = models.DateTimeField(null=True, blank=True)
    # Failed calculations in a row, and when the last one failed: the periodic job waits 30 min × 2^errors after
    # it, and gives up after MAX_ERRORS (persons/services/cohorts.py).
    errors_calculating = models.PositiveIntegerField(default=0)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # When the running (or queued) calculation was asked for: one still `is_calculating` an hour later was lost.
    calculation_queued_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name
