"""Reads of experiments and their flags: list filtering and ordering, eligible flags, velocity stats."""

import datetime as dt

from django.db.models import (
    Case,
    CharField,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Lower, Now, NullIf
from django.utils import timezone

from experiments.models import Experiment, ExperimentToSavedMetric, ExperimentType
from experiments_api.models import Project, User
from flags.models import FeatureFlag
from flags.selectors import feature_flags_for_serializer

EXPERIMENT_ORDER_FIELDS = (
    "created_at",
    "created_by",
    "updated_at",
    "name",
    "start_date",
    "end_date",
    "duration",
    "status",
)
ELIGIBLE_FLAG_ORDER_FIELDS = ("created_at", "key", "name")
DEFAULT_ORDER = "-created_at"


def experiments_with_relations(queryset: QuerySet[Experiment]) -> QuerySet[Experiment]:
    """Everything the serializer reads, loaded in a fixed number of queries whatever the page size."""
    # Each link's `experiment` is set by the prefetch itself; its saved metric is joined (one round trip, not two).
    links = Prefetch(
        "saved_metric_links", queryset=ExperimentToSavedMetric.objects.select_related("saved_metric").order_by("id")
    )
    return queryset.select_related("feature_flag", "created_by", "holdout__created_by").prefetch_related(links)


FLAG_COLUMNS = (
    "id",
    "project_id",
    "name",
    "key",
    "filters",
    "deleted",
    "active",
    "ensure_experience_continuity",
    "version",
    "evaluation_runtime",
    "evaluation_tags",
)
HOLDOUT_COLUMNS = ("name", "description", "filters", "created_at", "updated_at")
EXPERIMENT_COLUMNS = tuple(
    field.attname
    for field in Experiment._meta.concrete_fields
    if field.name not in ("project", "created_by", "feature_flag", "variants")  # read through the joins, or unused
)
LIST_ROW_COLUMNS = (
    *EXPERIMENT_COLUMNS,
    *(f"feature_flag__{column}" for column in FLAG_COLUMNS),
    *(f"created_by__{column}" for column in User.BASIC_FIELDS),
    *(f"holdout__{column}" for column in HOLDOUT_COLUMNS),
    *(f"holdout__created_by__{column}" for column in User.BASIC_FIELDS),
)


def experiment_list_rows(queryset: QuerySet[Experiment]) -> QuerySet[dict]:
    """The experiments list's rows: each experiment's columns with its flag, creator, holdout and the holdout's
    creator joined (keys such as `feature_flag__key`), as `values()` dicts. Building model instances and reading
    them through DRF's fields cost most of a page's time; the rows are shaped by the list serializer."""
    return queryset.values(*LIST_ROW_COLUMNS)


def with_saved_metric_links(rows: list[dict]) -> list[dict]:
    """The rows, each with `saved_metric_links`: its links (oldest first) with their saved metric's name and query,
    read in one query for the whole page."""
    links: dict[int, list[dict]] = {row["id"]: [] for row in rows}
    for link in (
        ExperimentToSavedMetric.objects.filter(experiment_id__in=links)
        .order_by("id")
        .values(
            "id",
            "experiment_id",
            "saved_metric_id",
            "metadata",
            "created_at",
            "saved_metric__name",
            "saved_metric__query",
        )
    ):
        links[link["experiment_id"]].append(link)
    for row in rows:
        row["saved_metric_links"] = links[row["id"]]
    return rows


def filter_experiments_by_status(queryset: QuerySet[Experiment], status: str) -> QuerySet[Experiment]:
    if status == "draft":
        return queryset.filter(start_date__isnull=True)
    if status == "running":
        return queryset.filter(start_date__isnull=False, end_date__isnull=True, feature_flag__active=True)
    if status == "paused":
        return queryset.filter(start_date__isnull=False, end_date__isnull=True, feature_flag__active=False)
    if status in ("stopped", "complete"):
        return queryset.filter(start_date__isnull=False, end_date__isnull=False)
    return queryset


def order_experiments(queryset: QuerySet[Experiment], order: str) -> QuerySet[Experiment]:
    """Order by an allow-listed field; `duration` and `status` are computed, `created_by` sorts by name then email."""
    descending = order.startswith("-")
    field = order.lstrip("-")
    if field == "duration":
        queryset = queryset.annotate(
            duration=ExpressionWrapper(Coalesce(F("end_date"), Now()) - F("start_date"), output_field=DurationField())
        )
    elif field == "status":
        queryset = queryset.annotate(
            status_rank=Case(
                When(start_date__isnull=True, then=Value(0)),
                When(end_date__isnull=True, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        field = "status_rank"
    elif field == "created_by":
        queryset = queryset.annotate(
            creator_name=Lower(
                Coalesce(NullIf("created_by__first_name", Value("")), "created_by__email", output_field=CharField())
            )
        )
        field = "creator_name"
    expression = F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_last=True)
    return queryset.order_by(expression, "-id")


def eligible_feature_flags(
    project: Project,
    *,
    order: str = DEFAULT_ORDER,
    search: str | None = None,
    active: bool | None = None,
    created_by_id: int | None = None,
    evaluation_runtime: str | None = None,
    has_evaluation_tags: bool | None = None,
) -> QuerySet[FeatureFlag]:
    """Live multivariate flags with ≥ 2 variants whose first variant is `control` (§4.10), filtered and ordered."""
    flags = FeatureFlag.objects.alive().filter(
        project=project,
        filters__multivariate__variants__1__isnull=False,
        filters__multivariate__variants__0__key="control",
    )
    if search:
        flags = flags.filter(Q(key__icontains=search) | Q(name__icontains=search))
    if active is not None:
        flags = flags.filter(active=active)
    if created_by_id is not None:
        flags = flags.filter(created_by_id=created_by_id)
    if evaluation_runtime is not None:
        flags = flags.filter(evaluation_runtime=evaluation_runtime)
    if has_evaluation_tags is not None:
        flags = flags.exclude(evaluation_tags=[]) if has_evaluation_tags else flags.filter(evaluation_tags=[])
    return feature_flags_for_serializer(flags.order_by(order, "-id"))


def velocity_stats(project: Project) -> dict:
    """Launches and completions over the last 30 days vs the 30 before, in the project's timezone (§4.12)."""
    today = timezone.now().astimezone(project.tzinfo).date()

    def midnight(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time.min, tzinfo=project.tzinfo)

    window_start, window_end = midnight(today - dt.timedelta(days=30)), midnight(today + dt.timedelta(days=1))
    previous_start = midnight(today - dt.timedelta(days=60))
    experiments = Experiment.objects.alive().filter(project=project, archived=False)
    launched_last = experiments.filter(start_date__gte=window_start, start_date__lt=window_end).count()
    launched_previous = experiments.filter(start_date__gte=previous_start, start_date__lt=window_start).count()
    if launched_previous == 0:
        percent_change = 100.0 if launched_last > 0 else 0.0
    else:
        percent_change = round((launched_last - launched_previous) / launched_previous * 100, 1)
    return {
        "launched_last_30d": launched_last,
        "launched_previous_30d": launched_previous,
        "percent_change": percent_change,
        "active_experiments": experiments.filter(start_date__isnull=False, end_date__isnull=True).count(),
        "completed_last_30d": experiments.filter(end_date__gte=window_start, end_date__lt=window_end).count(),
    }


def running_bandit_ids() -> list[int]:
    """Bandits that are launched, not ended and whose flag is active (a paused bandit is not reweighted)."""
    return list(
        Experiment.objects.alive()
        .filter(
            type=ExperimentType.BANDIT,
            start_date__isnull=False,
            start_date__lte=timezone.now(),
            end_date__isnull=True,
            feature_flag__active=True,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
