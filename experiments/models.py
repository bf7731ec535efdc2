"""Experiments, holdouts, saved metrics and the stored daily results of metrics."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from experiments_api.models import Project
from flags.models import Cohort, FeatureFlag


class ExperimentHoldout(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="experiment_holdouts")
    name = models.CharField(max_length=400)
    description = models.CharField(max_length=400, blank=True, null=True)
    # A list of groups, each {"properties": [...], "rollout_percentage": n, "variant": "holdout-<id>"}.
    filters = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class ExperimentSavedMetric(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="experiment_saved_metrics")
    name = models.CharField(max_length=400)
    description = models.CharField(max_length=400, blank=True, null=True)
    query = models.JSONField()
    metadata = models.JSONField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class ExperimentType(models.TextChoices):
    WEB = "web"
    PRODUCT = "product"
    BANDIT = "bandit"


class ExperimentStatus(models.TextChoices):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class ExperimentConclusion(models.TextChoices):
    WON = "won"
    LOST = "lost"
    INCONCLUSIVE = "inconclusive"
    STOPPED_EARLY = "stopped_early"
    INVALID = "invalid"


class ExperimentQuerySet(models.QuerySet):
    def alive(self) -> "ExperimentQuerySet":
        return self.filter(deleted=False)


class Experiment(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=400)
    description = models.CharField(max_length=3000, null=True, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    parameters = models.JSONField(default=dict, null=True, blank=True)
    secondary_metrics = models.JSONField(default=list, null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    feature_flag = models.ForeignKey(FeatureFlag, on_delete=models.RESTRICT, related_name="experiments")
    exposure_cohort = models.ForeignKey(Cohort, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    holdout = models.ForeignKey(
        ExperimentHoldout, on_delete=models.SET_NULL, null=True, blank=True, related_name="experiments"
    )
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    type = models.CharField(max_length=40, choices=ExperimentType.choices, null=True, blank=True, default="product")
    variants = models.JSONField(null=True, blank=True)
    exposure_criteria = models.JSONField(null=True, blank=True)
    metrics = models.JSONField(default=list, blank=True)
    metrics_secondary = models.JSONField(default=list, blank=True)
    primary_metrics_ordered_uuids = models.JSONField(null=True, blank=True)
    secondary_metrics_ordered_uuids = models.JSONField(null=True, blank=True)
    saved_metrics = models.ManyToManyField(
        ExperimentSavedMetric, through="ExperimentToSavedMetric", related_name="experiments", blank=True
    )
    stats_config = models.JSONField(null=True, blank=True)
    scheduling_config = models.JSONField(null=True, blank=True)
    only_count_matured_users = models.BooleanField(default=False)
    conclusion = models.CharField(max_length=30, choices=ExperimentConclusion.choices, null=True, blank=True)
    conclusion_comment = models.TextField(null=True, blank=True)

    objects = ExperimentQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["project", "deleted", "-created_at"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_draft(self) -> bool:
        return self.start_date is None

    @property
    def status(self) -> str:
        return experiment_status(
            start_date=self.start_date, end_date=self.end_date, flag_active=self.feature_flag.active
        )


def experiment_status(*, start_date, end_date, flag_active: bool) -> str:
    """Derived, never stored: paused is a running experiment whose flag is inactive."""
    if start_date is None:
        return ExperimentStatus.DRAFT
    if end_date is not None:
        return ExperimentStatus.STOPPED
    if not flag_active:
        return ExperimentStatus.PAUSED
    return ExperimentStatus.RUNNING


class ExperimentToSavedMetric(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="saved_metric_links")
    saved_metric = models.ForeignKey(ExperimentSavedMetric, on_delete=models.CASCADE, related_name="experiment_links")
    # {"type": "primary"|"secondary", "breakdowns": [...]}
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "saved_metric"], name="unique_experiment_saved_metric")
        ]


class MetricResultStatus(models.TextChoices):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


class ExperimentMetricResult(models.Model):
    """One metric's cumulative result from the experiment's start up to `query_to` (exclusive)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="metric_results")
    metric_uuid = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, null=True, blank=True)
    query_from = models.DateTimeField(null=True, blank=True)
    query_to = models.DateTimeField()
    status = models.CharField(max_length=20, choices=MetricResultStatus.choices, default=MetricResultStatus.PENDING)
    result = models.JSONField(null=True, blank=True)
    query_id = models.CharField(max_length=255, null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "metric_uuid", "fingerprint", "query_to"],
                name="unique_metric_result_per_day",
            )
        ]
        indexes = [models.Index(fields=["experiment", "metric_uuid", "fingerprint", "query_to"])]


class RecalculationStatus(models.TextChoices):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


ACTIVE_RECALCULATION_STATUSES = (RecalculationStatus.PENDING, RecalculationStatus.IN_PROGRESS)


class ExperimentTimeseriesRecalculation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="timeseries_recalculations")
    metric = models.JSONField()
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=RecalculationStatus.choices, default=RecalculationStatus.PENDING)
    last_successful_date = models.DateField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    # The lease of the task running it (see experiments/results/leases.py): renewed at every saved day.
    lease_owner = models.UUIDField(null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "fingerprint"],
                condition=Q(status__in=["pending", "in_progress"]),
                name="unique_active_timeseries_recalculation",
            )
        ]


class ExperimentActivity(models.Model):
    """One entry of an experiment's activity log: who did what, when, with the changed fields' before/after."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="activity")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    activity = models.CharField(max_length=40)
    # [{"field": name, "before": value, "after": value}, ...]
    changes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["experiment", "-created_at"])]


class RecalculationTrigger(models.TextChoices):
    MANUAL = "manual"
    EXPERIMENT_LAUNCH = "experiment_launch"
    EXPERIMENT_STOP = "experiment_stop"
    EXPERIMENT_UPDATE = "experiment_update"


class ExperimentMetricsRecalculation(models.Model):
    """A batch recalculation of every metric of an experiment, fanned out as one Celery task per metric."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="metrics_recalculations")
    status = models.CharField(max_length=20, choices=RecalculationStatus.choices, default=RecalculationStatus.PENDING)
    trigger = models.CharField(max_length=30, choices=RecalculationTrigger.choices, default=RecalculationTrigger.MANUAL)
    total_metrics = models.PositiveIntegerField(default=0)
    completed_metrics = models.PositiveIntegerField(default=0)
    failed_metrics = models.PositiveIntegerField(default=0)
    # {metric_uuid: error message}
    metric_errors = models.JSONField(default=dict)
    # The metrics of the batch, and those already counted in completed/failed (a redelivered task counts once).
    metric_uuids = models.JSONField(default=list)
    processed_metric_uuids = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment"],
                condition=Q(status__in=["pending", "in_progress"]),
                name="unique_active_metrics_recalculation",
            )
        ]
