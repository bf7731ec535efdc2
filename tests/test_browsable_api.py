"""The browsable API in headless Chromium: log in, create an experiment from the HTML form with only a name and a
flag key, and find no DELETE button where DELETE answers 405."""

import pytest

from experiments.models import Experiment
from tests.factories import ExperimentFactory, FeatureFlagFactory, member_of

PASSWORD = "correct horse battery staple"


@pytest.fixture
def session_user(project):
    user = member_of(project)
    user.set_password(PASSWORD)
    user.save()
    return user


def log_in(page, user, next_path: str) -> None:
    page.goto(f"/api-auth/login/?next={next_path}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("#submit-id-submit")
    page.wait_for_url(f"**{next_path}")


def test_the_html_form_creates_an_experiment_from_a_name_and_a_flag_key(browser_page, project, session_user):
    page = browser_page.page
    list_path = f"/api/projects/{project.pk}/experiments/"
    log_in(page, session_user, list_path)
    form = page.locator("#post-object-form form")

    prefilled = {name: form.locator(f"textarea[name={name}]").input_value() for name in ("metrics", "filters")}
    form.locator("input[name=name]").fill("Checkout button")
    form.locator("input[name=feature_flag_key]").fill("checkout-button")
    form.locator("button", has_text="POST").click()
    page.wait_for_load_state()

    assert prefilled == {"metrics": "[]", "filters": "{}"}
    assert "HTTP 201 Created" in page.locator(".response-info").inner_text()
    experiment = Experiment.objects.get(project=project)
    assert (experiment.name, experiment.feature_flag.key) == ("Checkout button", "checkout-button")
    assert experiment.created_by == session_user
    assert (experiment.type, experiment.metrics, experiment.metrics_secondary) == ("product", [], [])
    assert experiment.stats_config == {"method": "bayesian"}
    assert experiment.start_date is None
    assert browser_page.outside_requests == []


def test_the_experiment_page_offers_no_delete_button(browser_page, project, session_user):
    experiment = ExperimentFactory(project=project, feature_flag=FeatureFlagFactory(project=project))
    page = browser_page.page

    log_in(page, session_user, f"/api/projects/{project.pk}/experiments/{experiment.pk}/")

    assert "HTTP 200 OK" in page.locator(".response-info").inner_text()
    assert page.locator("#put-object-form").count() == 1
    assert page.locator("button", has_text="DELETE").count() == 0
    assert browser_page.outside_requests == []


def test_a_json_field_left_blank_in_a_form_is_not_sent(api_client, project):
    response = api_client.post(
        f"/api/projects/{project.pk}/experiments/",
        {
            "name": "Blank fields",
            "feature_flag_key": "blank-fields",
            "metrics": "",
            "parameters": "  ",
            "exposure_criteria": "",
            "primary_metrics_ordered_uuids": "",
        },
        format="multipart",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["metrics"], body["parameters"], body["exposure_criteria"]) == ([], {}, None)
    assert body["primary_metrics_ordered_uuids"] is None


def test_a_json_field_with_invalid_json_in_a_form_is_a_400(api_client, project):
    response = api_client.post(
        f"/api/projects/{project.pk}/experiments/",
        {"name": "Bad JSON", "feature_flag_key": "bad-json", "metrics": "[{"},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json() == {
        "type": "validation_error",
        "code": "invalid_input",
        "detail": "Value must be valid JSON.",
        "attr": "metrics",
    }
    assert not Experiment.objects.exists()
