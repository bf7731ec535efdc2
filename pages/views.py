"""Results pages for a session user: the projects they belong to, a project's experiments, one experiment's
results, and its per-day results as CSV. Projects the user is not a member of answer 404."""

import csv

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

from . import messages
from .charts import page_data
from .selectors import (
    experiment_days_run,
    experiment_results,
    member_project_get,
    member_projects,
    project_experiment_get,
    project_experiments,
)

CSV_COLUMNS = (
    "date",
    "metric_uuid",
    "metric_name",
    "metric_role",
    "variant",
    "exposures",
    "value",
    "delta",
    "interval_low",
    "interval_high",
    "chance_to_win",
    "p_value",
    "significant",
)


@require_safe
@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/project_list.html", {"projects": member_projects(user=request.user)})


@require_safe
@login_required
def experiment_list(request: HttpRequest, project_id: int) -> HttpResponse:
    project = member_project_get(user=request.user, project_id=project_id)
    return render(
        request, "pages/experiment_list.html", {"project": project, "experiments": project_experiments(project=project)}
    )


@require_safe
@login_required
@ensure_csrf_cookie
def experiment_detail(request: HttpRequest, project_id: int, experiment_id: int) -> HttpResponse:
    """The results page; its recalculate buttons call the API with this session (CSRF token from the cookie)."""
    project = member_project_get(user=request.user, project_id=project_id)
    experiment = project_experiment_get(project=project, experiment_id=experiment_id)
    results = experiment_results(experiment=experiment)
    return render(
        request,
        "pages/experiment_detail.html",
        {
            "project": project,
            "experiment": experiment,
            "results": results,
            "days_run": experiment_days_run(experiment),
            "page_data": page_data(results),
            "texts": messages,
        },
    )


def _optional(value) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


@require_safe
@login_required
def experiment_results_csv(request: HttpRequest, project_id: int, experiment_id: int) -> HttpResponse:
    """One row per metric, day and variant (control included) with the stored cumulative result of that day."""
    project = member_project_get(user=request.user, project_id=project_id)
    experiment = project_experiment_get(project=project, experiment_id=experiment_id)
    results = experiment_results(experiment=experiment)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="experiment-{experiment.pk}-daily-results.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for metric in results.metrics:
        for day in metric.daily:
            for variant in (day.baseline, *day.variants):
                low, high = variant.interval or (None, None)
                writer.writerow(
                    [
                        day.day,
                        metric.uuid,
                        metric.name,
                        metric.role,
                        variant.key,
                        variant.exposures,
                        *(_optional(number) for number in (variant.value, variant.delta, low, high)),
                        _optional(variant.chance_to_win),
                        _optional(variant.p_value),
                        _optional(variant.significant),
                    ]
                )
    return response
