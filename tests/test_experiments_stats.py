"""GET /experiments/stats/ (§4.12): experimentation velocity counted in whole days of the project's timezone."""

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from tests.factories import ExperimentFactory, ProjectFactory, member_of
from tests.helpers import NOT_A_MEMBER, missing_scope

MINUTE = dt.timedelta(minutes=1)


def stats_url(project) -> str:
    return f"/api/projects/{project.id}/experiments/stats/"


def stats(client, project) -> dict:
    response = client.get(stats_url(project))
    assert response.status_code == 200, response.json()
    return response.json()


def days_ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


def zone_far_from_midnight() -> str:
    """A fixed-offset zone, never UTC, where it is now about noon, so the test cannot straddle local midnight.

    IANA's Etc/GMT names have the sign inverted: Etc/GMT-3 is UTC+3.
    """
    offset = 12 - timezone.now().astimezone(dt.UTC).hour or 3
    return f"Etc/GMT{-offset:+d}"


def local_midnight(tz: zoneinfo.ZoneInfo, days_from_today: int) -> dt.datetime:
    today = timezone.now().astimezone(tz).date()
    return dt.datetime.combine(today + dt.timedelta(days=days_from_today), dt.time.min, tzinfo=tz)


def test_an_empty_project(api_client, project):
    assert stats(api_client, project) == {
        "launched_last_30d": 0,
        "launched_previous_30d": 0,
        "percent_change": 0.0,
        "active_experiments": 0,
        "completed_last_30d": 0,
    }


def test_launches_completions_and_running_experiments_are_counted(api_client, project):
    ExperimentFactory(project=project, start_date=days_ago(1))
    ExperimentFactory(project=project, start_date=days_ago(10), end_date=days_ago(2))
    ExperimentFactory(project=project, start_date=days_ago(45))
    ExperimentFactory(project=project, start_date=days_ago(50), end_date=days_ago(40))
    # Running for months: active, but launched outside both windows.
    ExperimentFactory(project=project, start_date=days_ago(200))
    ExperimentFactory(project=project)  # a draft counts nowhere
    # Archived and deleted experiments are left out of everything (§10.12), as are other projects'.
    ExperimentFactory(project=project, start_date=days_ago(1), archived=True)
    ExperimentFactory(project=project, start_date=days_ago(1), deleted=True)
    ExperimentFactory(start_date=days_ago(1))

    assert stats(api_client, project) == {
        "launched_last_30d": 2,
        "launched_previous_30d": 2,
        "percent_change": 0.0,
        "active_experiments": 3,
        "completed_last_30d": 1,
    }


@pytest.mark.parametrize(
    ("last", "previous", "percent_change"),
    [(1, 0, 100.0), (0, 0, 0.0), (1, 3, -66.7), (2, 3, -33.3), (5, 3, 66.7), (0, 2, -100.0), (3, 3, 0.0)],
)
def test_percent_change_is_rounded_to_one_decimal(api_client, project, last, previous, percent_change):
    for _ in range(last):
        ExperimentFactory(project=project, start_date=days_ago(5))
    for _ in range(previous):
        ExperimentFactory(project=project, start_date=days_ago(40))

    body = stats(api_client, project)

    assert (body["launched_last_30d"], body["launched_previous_30d"]) == (last, previous)
    assert body["percent_change"] == percent_change


def test_the_windows_are_whole_days_of_the_project_timezone(db, make_client):
    """Each window starts at a local midnight; a minute either side of it decides which window counts a launch.

    In a project whose offset is not zero, UTC midnights would put each pair below in the same window.
    """
    project = ProjectFactory(timezone=zone_far_from_midnight())
    tz = zoneinfo.ZoneInfo(project.timezone)
    last_start, last_end = local_midnight(tz, -30), local_midnight(tz, 1)
    previous_start = local_midnight(tz, -60)
    for start_date in (
        previous_start - MINUTE,  # before both windows
        previous_start,  # previous
        last_start - MINUTE,  # previous
        last_start,  # last 30 days
        last_end - MINUTE,  # last 30 days: later today, local time
        last_end,  # tomorrow: counts nowhere
    ):
        ExperimentFactory(project=project, start_date=start_date - dt.timedelta(days=300), end_date=start_date)
        ExperimentFactory(project=project, start_date=start_date)

    assert stats(make_client(member_of(project)), project) == {
        "launched_last_30d": 2,
        "launched_previous_30d": 2,
        "percent_change": 0.0,
        "active_experiments": 6,
        "completed_last_30d": 2,
    }


def test_experiment_read_is_enough_and_needed(make_client, user, project):
    ExperimentFactory(project=project, start_date=days_ago(1))

    allowed = make_client(user, scopes=["experiment:read"]).get(stats_url(project))
    refused = make_client(user, scopes=["feature_flag:read"]).get(stats_url(project))

    assert allowed.status_code == 200
    assert allowed.json()["launched_last_30d"] == 1
    assert refused.status_code == 403
    assert refused.json() == missing_scope("experiment:read")


def test_a_user_of_another_organization_sees_nothing(make_client, project):
    ExperimentFactory(project=project, start_date=days_ago(1))
    outsider_project = ProjectFactory()
    outsider = make_client(member_of(outsider_project))

    response = outsider.get(stats_url(project))

    assert response.status_code == 403
    assert response.json() == NOT_A_MEMBER
    assert stats(outsider, outsider_project)["launched_last_30d"] == 0
