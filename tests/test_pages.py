"""The results pages: session login, membership (404 elsewhere), the experiment list, an experiment's results
(demo winner and flat metric, no results yet, a failed metric, a running recalculation, health warnings), the CSV
export, the browsable API's link and the locally served assets."""

import csv
import datetime as dt
import io
import json
import re

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from experiments.definitions.fingerprint import experiment_metric_fingerprint
from experiments.models import Experiment, ExperimentToSavedMetric
from experiments.results.backfill import metric_result_upsert
from experiments.results.requests import timeseries_recalculation_request
from experiments_api.demo import DEMO_EXPERIMENT, seed_demo
from experiments_api.models import User
from pages import formatting, messages
from pages.views import CSV_COLUMNS
from tests.factories import (
    ExperimentFactory,
    FeatureFlagFactory,
    ProjectFactory,
    SavedMetricFactory,
    mean_metric,
    member_of,
)
from tests.metric_reference import RawEvent
from tests.test_metric_aggregation import store

pytestmark = pytest.mark.django_db

METRIC_UUID = "11111111-1111-4111-8111-111111111111"


def session_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_urls(experiment: Experiment) -> list[str]:
    base = f"/projects/{experiment.project_id}/experiments/"
    return [base, f"{base}{experiment.pk}/", f"{base}{experiment.pk}/results.csv"]


@pytest.fixture
def demo(django_capture_on_commit_callbacks):
    """The seeded demo (events and daily results computed in-process), its experiment and a session."""
    with django_capture_on_commit_callbacks(execute=True):
        seeded = seed_demo()
    experiment = Experiment.objects.get(pk=seeded["experiment_id"])
    user = User.objects.get(email=seeded["login"]["email"])
    return experiment, session_for(user)


def launched_experiment(project, **extra) -> Experiment:
    start = timezone.now() - dt.timedelta(days=3)
    flag = FeatureFlagFactory(project=project)
    return ExperimentFactory(
        project=project,
        feature_flag=flag,
        start_date=start,
        metrics=[mean_metric(uuid=METRIC_UUID, name="Page views")],
        **extra,
    )


def exposures(experiment: Experiment, counts: dict[str, int], *, both: int = 0) -> None:
    """`counts` users exposed to each variant, and `both` users exposed to control then test."""
    moment = experiment.start_date + dt.timedelta(hours=1)
    key = experiment.feature_flag.key
    events = []
    for variant, count in counts.items():
        events += [
            RawEvent(
                "$feature_flag_called",
                f"{variant}-{n}",
                moment,
                {"$feature_flag": key, "$feature_flag_response": variant},
            )
            for n in range(count)
        ]
    for n in range(both):
        for variant in ("control", "test"):
            events.append(
                RawEvent(
                    "$feature_flag_called",
                    f"both-{n}",
                    moment,
                    {"$feature_flag": key, "$feature_flag_response": variant},
                )
            )
    store(experiment.project, events)


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_every_page_needs_a_login():
    experiment = ExperimentFactory()
    for url in ["/projects/", *page_urls(experiment)]:
        response = Client().get(url)
        assert (response.status_code, response["Location"]) == (302, f"/api-auth/login/?next={url}")


def test_the_project_list_shows_only_the_users_projects(user, project):
    other = ProjectFactory(name="Somebody else's")

    response = session_for(user).get("/projects/")

    assert response.status_code == 200
    assert f'href="/projects/{project.pk}/experiments/"' in text(response)
    assert other.name not in text(response)


def test_pages_of_another_project_or_an_unknown_one_are_404(user):
    foreign = launched_experiment(ProjectFactory())
    client = session_for(user)
    for url in page_urls(foreign):
        assert client.get(url).status_code == 404
    assert client.get("/projects/999999/experiments/").status_code == 404


def test_an_experiment_id_of_another_project_is_404_under_the_users_project(user, project):
    foreign = launched_experiment(ProjectFactory())
    base = f"/projects/{project.pk}/experiments/{foreign.pk}"
    client = session_for(user)
    assert (client.get(f"{base}/").status_code, client.get(f"{base}/results.csv").status_code) == (404, 404)


def test_a_deleted_experiment_is_404_and_left_out_of_the_list(user, project):
    deleted = launched_experiment(project, deleted=True, name="Gone")
    client = session_for(user)
    assert client.get(f"/projects/{project.pk}/experiments/{deleted.pk}/").status_code == 404
    assert "Gone" not in text(client.get(f"/projects/{project.pk}/experiments/"))


def test_the_experiment_list_shows_status_dates_variants_and_links(user, project):
    running = launched_experiment(project, name="Checkout test")
    draft = ExperimentFactory(project=project, name="Pricing draft")

    response = session_for(user).get(f"/projects/{project.pk}/experiments/")

    page = text(response)
    assert response.status_code == 200
    assert f'href="/projects/{project.pk}/experiments/{running.pk}/"' in page
    assert f'href="/projects/{project.pk}/experiments/{draft.pk}/"' in page
    assert '<span class="status status-running">Running</span>' in page
    assert '<span class="status status-draft">Draft</span>' in page
    assert running.start_date.strftime("%-d %b %Y") in page
    assert "<code>control</code> 50%" in page and "<code>test</code> 50%" in page


def test_the_demo_shows_a_clear_winner_and_a_flat_metric_with_the_apis_numbers(demo):
    experiment, client = demo
    response = client.get(f"/projects/{experiment.project_id}/experiments/{experiment.pk}/")
    page = text(response)
    assert response.status_code == 200
    assert DEMO_EXPERIMENT in page and experiment.feature_flag.key in page
    assert 'id="warnings"' not in page

    data = json.loads(re.search(r'<script id="page-data" type="application/json">(.*?)</script>', page).group(1))
    names = [metric["name"] for metric in data["metrics"]]
    assert names == ["Pageview to purchase", "Revenue per user"]
    api = f"/api/projects/{experiment.project_id}/experiments/{experiment.pk}/timeseries_results/"
    verdicts = {}
    for metric in data["metrics"]:
        body = client.get(api, {"metric_uuid": metric["uuid"], "fingerprint": metric["fingerprint"]}).json()
        latest = [day for day in body["timeseries"].values() if day][-1]
        variant = latest["variant_results"][0]
        low, high = variant["credible_interval"]
        proportion = metric["metric"]["metric_type"] == "funnel"
        section = page[page.index(f'data-metric-uuid="{metric["uuid"]}"') :]
        row = section[
            section.index('<tr data-variant="test"') : section.index("</tr>", section.index('<tr data-variant="test"'))
        ]
        assert f'class="exposures">{variant["number_of_samples"]}<' in row
        assert formatting.delta_text((low + high) / 2, relative=True, proportion=proportion) in row
        assert formatting.interval_text((low, high), relative=True, proportion=proportion) in row
        assert (
            f'class="chance" data-raw="{variant["chance_to_win"]}">{formatting.chance_text(variant["chance_to_win"])}<'
            in row
        )
        verdicts[metric["name"]] = re.search(r'class="verdict">([^<]*)<', row).group(1)
        assert metric["cumulative"]["labels"] == [day for day, result in body["timeseries"].items() if result]
        assert metric["interval"]["ranges"] == [[low, high]]
    assert verdicts == {"Pageview to purchase": messages.SIGNIFICANT_WIN, "Revenue per user": messages.NOT_SIGNIFICANT}
    assert data["exposures"]["series"][0]["variant"] == "control"
    assert "the split matches the flag" in page


def test_the_results_page_serves_every_asset_from_this_server(demo):
    experiment, client = demo
    page = client.get(f"/projects/{experiment.project_id}/experiments/{experiment.pk}/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"#]+\.(?:js|css))"', page)
    assert sorted(assets) == [
        "/static/pages/experiment.js",
        "/static/pages/pages.css",
        "/static/pages/vendor/chart.js/chart.umd.min.js",
    ]
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert b"".join(response.streaming_content)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)


def test_a_draft_has_no_results_and_no_recalculate_buttons(user, project):
    draft = ExperimentFactory(project=project, metrics=[mean_metric(uuid=METRIC_UUID)])

    page = text(session_for(user).get(f"/projects/{project.pk}/experiments/{draft.pk}/"))

    assert messages.DRAFT_NO_RESULTS in page
    assert 'id="recalculate-timeseries"' not in page


def test_a_launched_experiment_without_results_says_so(user, project):
    experiment = launched_experiment(project)
    exposures(experiment, {"control": 60, "test": 60})

    page = text(session_for(user).get(f"/projects/{project.pk}/experiments/{experiment.pk}/"))

    assert messages.METRIC_NOT_COMPUTED in page
    assert 'id="recalculate-timeseries"' in page and 'id="warnings"' not in page


def test_a_failed_metric_shows_its_error(user, project):
    experiment = launched_experiment(project)
    metric = experiment.metrics[0]
    metric_result_upsert(
        experiment=experiment,
        metric_uuid=METRIC_UUID,
        fingerprint=experiment_metric_fingerprint(experiment, metric),
        query_to=timezone.now(),
        result=None,
        error="Breakdowns are not supported yet",
    )

    page = text(session_for(user).get(f"/projects/{project.pk}/experiments/{experiment.pk}/"))

    assert messages.METRIC_FAILED.format(error="Breakdowns are not supported yet") in page
    assert messages.METRIC_NOT_COMPUTED not in page


def test_a_running_recalculation_is_shown_and_polled(user, project):
    experiment = launched_experiment(project)
    metric = experiment.metrics[0]
    timeseries_recalculation_request(
        experiment=experiment, metric=metric, fingerprint=experiment_metric_fingerprint(experiment, metric)
    )  # its task is only enqueued on commit, which never comes in this test: it stays pending

    page = text(session_for(user).get(f"/projects/{project.pk}/experiments/{experiment.pk}/"))

    assert "Recalculation in progress" in page
    data = json.loads(re.search(r'<script id="page-data" type="application/json">(.*?)</script>', page).group(1))
    assert [metric["recalculating"] for metric in data["metrics"]] == [True]
    assert data["urls"] == {
        "recalculate_timeseries": f"/api/projects/{project.pk}/experiments/{experiment.pk}/recalculate_timeseries",
        "timeseries_results": f"/api/projects/{project.pk}/experiments/{experiment.pk}/timeseries_results",
        "metrics_recalculation": f"/api/projects/{project.pk}/experiments/{experiment.pk}/metrics_recalculation",
    }


def test_health_warnings_for_a_mismatch_thin_variants_and_multiple_exposures(user, project):
    mismatched = launched_experiment(project)
    exposures(mismatched, {"control": 300, "test": 150})
    thin = launched_experiment(ProjectFactory())
    member_of(thin.project, user)
    exposures(thin, {"control": 60, "test": 10}, both=5)
    client = session_for(user)

    mismatch_page = text(client.get(f"/projects/{project.pk}/experiments/{mismatched.pk}/"))
    thin_page = text(client.get(f"/projects/{thin.project_id}/experiments/{thin.pk}/"))

    assert escape(messages.WARNING_SAMPLE_RATIO_MISMATCH.format(p_value="< 0.001")) in mismatch_page
    assert "Not enough exposures" not in mismatch_page and "$multiple" not in mismatch_page
    assert messages.WARNING_NOT_ENOUGH_EXPOSURES.format(variants="test", verb="has", minimum=50) in thin_page
    assert messages.WARNING_MULTIPLE_VARIANTS.format(share="6.7%") in thin_page
    assert messages.SRM_NOT_ENOUGH_DATA.format(minimum=100) in thin_page


def test_the_csv_has_one_row_per_metric_day_and_variant_with_the_stored_numbers(demo):
    experiment, client = demo
    response = client.get(f"/projects/{experiment.project_id}/experiments/{experiment.pk}/results.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="experiment-{experiment.pk}-daily-results.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == list(CSV_COLUMNS)
    api = f"/api/projects/{experiment.project_id}/experiments/{experiment.pk}/timeseries_results/"
    for metric in experiment.metrics:
        fingerprint = experiment_metric_fingerprint(experiment, metric)
        timeseries = client.get(api, {"metric_uuid": metric["uuid"], "fingerprint": fingerprint}).json()["timeseries"]
        days = {day: result for day, result in timeseries.items() if result}
        metric_rows = [row for row in rows if row["metric_uuid"] == metric["uuid"]]
        assert len(metric_rows) == 2 * len(days)
        for row in metric_rows:
            result = days[row["date"]]
            if row["variant"] == "control":
                assert (int(row["exposures"]), row["delta"]) == (result["baseline"]["number_of_samples"], "")
            else:
                variant = result["variant_results"][0]
                assert int(row["exposures"]) == variant["number_of_samples"]
                if "credible_interval" in variant:
                    assert [float(row["interval_low"]), float(row["interval_high"])] == variant["credible_interval"]
                    assert float(row["chance_to_win"]) == variant["chance_to_win"]
                    assert row["significant"] == str(variant["significant"])
                else:  # too few units on the first days: no inference, as in the API
                    assert (row["interval_low"], row["chance_to_win"], row["significant"]) == ("", "", "")
                assert row["metric_role"] == "primary" and row["metric_name"] == metric["name"]


def test_the_browsable_api_links_an_experiment_to_its_results_page(user, project):
    experiment = launched_experiment(project)
    client = session_for(user)
    url = f"/api/projects/{project.pk}/experiments/{experiment.pk}/"

    html = client.get(url, HTTP_ACCEPT="text/html").content.decode()
    listing = client.get(f"/api/projects/{project.pk}/experiments/", HTTP_ACCEPT="text/html").content.decode()
    body = client.get(url, HTTP_ACCEPT="application/json").json()

    assert f'id="results-page-link" href="/projects/{project.pk}/experiments/{experiment.pk}/"' in html
    assert "results-page-link" not in listing
    assert not any("results" in key for key in body)


def test_a_one_sided_frequentist_experiment_shows_p_values_and_an_open_interval(
    user, project, django_capture_on_commit_callbacks
):
    experiment = launched_experiment(
        project, stats_config={"method": "frequentist", "frequentist": {"alternative": "greater"}}
    )
    exposures(experiment, {"control": 80, "test": 80})
    moment = experiment.start_date + dt.timedelta(hours=2)
    views = {"control": lambda n: n % 2 + 1, "test": lambda n: n % 3 + 2}  # means 1.5 and 2.99
    store(
        project,
        [
            RawEvent("$pageview", f"{variant}-{n}", moment + dt.timedelta(minutes=view), {})
            for variant, count in views.items()
            for n in range(80)
            for view in range(count(n))
        ],
    )
    metric = experiment.metrics[0]
    with django_capture_on_commit_callbacks(execute=True):
        timeseries_recalculation_request(
            experiment=experiment, metric=metric, fingerprint=experiment_metric_fingerprint(experiment, metric)
        )

    page = text(session_for(user).get(f"/projects/{project.pk}/experiments/{experiment.pk}/"))

    assert '<th scope="col">p-value</th>' in page and "Chance to win" not in page
    row = page[page.index('<tr data-variant="test"') :]
    row = row[: row.index("</tr>")]
    control_mean, test_mean = 120 / 80, 239 / 80
    p_value = float(re.search(r'class="p-value" data-raw="([^"]+)"', row).group(1))
    assert p_value < 0.001
    assert formatting.delta_text(test_mean / control_mean - 1, relative=True, proportion=False) == "+99.2%"
    assert "+99.2%" in row and re.search(r"\+\d+\.\d% or more", row)
    assert messages.SIGNIFICANT_WIN in row


def test_secondary_and_saved_metrics_are_listed_under_their_role(user, project):
    experiment = launched_experiment(
        project, metrics_secondary=[mean_metric("purchase", uuid="22222222-2222-4222-8222-222222222222")]
    )
    saved = SavedMetricFactory(
        project=project,
        name="Saved checkout views",
        query=mean_metric("checkout viewed", uuid="33333333-3333-4333-8333-333333333333"),
    )
    ExperimentToSavedMetric.objects.create(experiment=experiment, saved_metric=saved, metadata={"type": "secondary"})

    page = text(session_for(user).get(f"/projects/{project.pk}/experiments/{experiment.pk}/"))

    primary, secondary = page.split("Primary metric")[1].split("Secondary metrics")
    assert "Page views" in primary
    assert re.findall(r'<h3 id="metric-[^"]+">([^<]+?) <', secondary) == ["purchase", "Saved checkout views"]


def test_the_experiment_list_reads_a_fixed_number_of_queries(user, project, django_assert_num_queries):
    client = session_for(user)
    launched_experiment(project)
    client.get(f"/projects/{project.pk}/experiments/")  # the session and user are loaded and cached once
    for number in range(5):
        ExperimentFactory(project=project, name=f"More {number}")

    with django_assert_num_queries(5):
        response = client.get(f"/projects/{project.pk}/experiments/")

    assert response.content.decode().count('class="status status-') == 6
