"""End to end in headless Chromium (Debian's package, driven by Playwright): log in, open the demo experiment, check
the numbers shown against the API's, recalculate (daily results, then current results) through a real Celery worker
and wait until done, save
screenshots under artifacts/, and check no request left for another host."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from experiments.models import ACTIVE_RECALCULATION_STATUSES, ExperimentTimeseriesRecalculation
from experiments_api.demo import DEMO_PASSWORD, seed_demo
from pages import formatting, messages
from tests.browser import CHROMIUM, chromium, is_outside
from tests.test_celery_worker import start_worker, wait_for  # noqa: F401  (start_worker is a fixture)

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def no_active_recalculation() -> bool:
    return not ExperimentTimeseriesRecalculation.objects.filter(status__in=ACTIVE_RECALCULATION_STATUSES).exists()


def shown_numbers_match_the_api(page: Page, base_url: str) -> dict[str, str]:
    """For every metric, the test variant's row equals the latest day of the API's timeseries; returns the
    significance words shown per metric."""
    data = page.evaluate("JSON.parse(document.getElementById('page-data').textContent)")
    api = data["urls"]["timeseries_results"]
    verdicts = {}
    for metric in data["metrics"]:
        response = page.request.get(
            f"{base_url}{api}", params={"metric_uuid": metric["uuid"], "fingerprint": metric["fingerprint"]}
        )
        assert response.status == 200
        latest = [day for day in response.json()["timeseries"].values() if day][-1]
        variant, baseline = latest["variant_results"][0], latest["baseline"]
        low, high = variant["credible_interval"]
        proportion = metric["metric"]["metric_type"] == "funnel"
        section = page.locator(f'section[data-metric-uuid="{metric["uuid"]}"]')
        control_row, test_row = (
            section.locator('tr[data-variant="control"]'),
            section.locator('tr[data-variant="test"]'),
        )
        expect(control_row.locator(".exposures")).to_have_text(str(baseline["number_of_samples"]))
        expect(test_row.locator(".exposures")).to_have_text(str(variant["number_of_samples"]))
        delta = formatting.delta_text((low + high) / 2, relative=True, proportion=proportion)
        interval = formatting.interval_text((low, high), relative=True, proportion=proportion)
        expect(test_row.locator(".delta")).to_have_text(
            re.compile(rf"^\s*{re.escape(delta)}\s+{re.escape(interval)}\s*$")
        )
        expect(test_row.locator(".chance")).to_have_text(formatting.chance_text(variant["chance_to_win"]))
        verdicts[metric["name"]] = test_row.locator(".verdict").inner_text().strip()
    return verdicts


def test_the_demo_results_page_in_a_browser(live_server, start_worker):  # noqa: F811
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: scripts/test installs it (apt-get install -y chromium).")
    worker = start_worker()
    seeded = seed_demo()
    wait_for(no_active_recalculation, "the demo's daily results", [worker])
    page_path = f"/projects/{seeded['project_id']}/experiments/{seeded['experiment_id']}/"
    ARTIFACTS.mkdir(exist_ok=True)
    foreign_requests: list[str] = []

    with chromium() as browser:
        context = browser.new_context(viewport=LAPTOP)

        def only_this_server(route):
            if is_outside(route.request.url):
                foreign_requests.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        context.route("**/*", only_this_server)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        page.goto(f"{live_server.url}/api-auth/login/?next={page_path}")
        page.fill("#id_username", seeded["login"]["username"])
        page.fill("#id_password", DEMO_PASSWORD)
        page.click("[type=submit]")
        page.wait_for_url(f"{live_server.url}{page_path}")

        expect(page.locator("h1")).to_have_text("Demo: one-click checkout")
        assert page.evaluate("Object.keys(Chart.instances).length") == 5  # exposures, 2 interval bars, 2 cumulative
        verdicts = shown_numbers_match_the_api(page, live_server.url)
        assert verdicts == {
            "Pageview to purchase": f"{messages.SIGNIFICANT_WIN}",
            "Revenue per user": messages.NOT_SIGNIFICANT,
        }

        page.click("#recalculate-timeseries")
        expect(page.locator("#recalculation-status")).to_contain_text("Recalculation complete", timeout=90_000)
        assert shown_numbers_match_the_api(page, live_server.url) == verdicts

        page.click("#recalculate-current")
        expect(page.locator("#recalculation-status")).to_have_text(
            "Recalculation complete: 2 of 2 metrics refreshed.", timeout=90_000
        )
        assert shown_numbers_match_the_api(page, live_server.url) == verdicts
        page.screenshot(path=str(ARTIFACTS / "experiment-page-laptop.png"), full_page=True)

        page.set_viewport_size(PHONE)
        page.reload()
        page.screenshot(path=str(ARTIFACTS / "experiment-page-phone.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    assert errors == []
    assert foreign_requests == []
    assert ExperimentTimeseriesRecalculation.objects.filter(status="completed").count() == 4  # seed, then the click
