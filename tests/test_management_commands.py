"""create_personal_api_key prints one JSON line with a working key and refuses bad input; seed_demo is re-runnable."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from experiments_api.models import (
    Organization,
    PersonalAPIKey,
    Project,
    ProjectMembership,
    User,
    hash_personal_api_key,
)
from experiments_api.services import DEFAULT_ORGANIZATION_NAME, DEFAULT_PROJECT_NAME
from tests.helpers import missing_scope

pytestmark = pytest.mark.django_db


def create_key(*args: str) -> dict:
    stdout = StringIO()
    call_command("create_personal_api_key", *args, stdout=stdout)
    lines = stdout.getvalue().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_prints_one_json_line_describing_the_new_key_user_and_project():
    output = create_key("--email", "ada@example.com", "--organization", "Acme", "--project", "Web")

    user = User.objects.get(email="ada@example.com")
    project = Project.objects.get(name="Web", organization__name="Acme")
    assert output == {
        "key": output["key"],
        "user_id": user.pk,
        "organization_id": str(project.organization_id),
        "project_id": project.pk,
        "project_api_token": project.api_token,
    }
    assert output["key"].startswith("phx_")
    assert len(output["key"]) >= len("phx_") + 32
    assert project.api_token.startswith("phc_")
    assert ProjectMembership.objects.filter(user=user, project=project).exists()
    assert user.current_project == project


def test_stores_only_the_hash_and_a_mask_of_the_key_with_the_given_scopes():
    output = create_key("--email", "ada@example.com", "--scopes", "experiment:read, feature_flag:write")

    key = PersonalAPIKey.objects.get(user__email="ada@example.com")
    assert key.secure_value == hash_personal_api_key(output["key"])
    assert key.mask_value == f"{output['key'][:4]}...{output['key'][-4:]}"
    assert key.scopes == ["experiment:read", "feature_flag:write"]
    assert key.scoped_projects is None


def test_without_names_uses_the_default_organization_and_project():
    output = create_key("--email", "ada@example.com")

    project = Project.objects.get(pk=output["project_id"])
    assert (project.organization.name, project.name) == (DEFAULT_ORGANIZATION_NAME, DEFAULT_PROJECT_NAME)
    assert PersonalAPIKey.objects.get(user__email="ada@example.com").scopes == ["*"]


def test_reuses_an_existing_organization_project_and_user_by_name():
    first = create_key("--email", "ada@example.com", "--organization", "Acme", "--project", "Web")
    second = create_key("--email", "grace@example.com", "--organization", "Acme", "--project", "Web")
    again = create_key("--email", "ADA@example.com", "--organization", "Acme", "--project", "Web")

    assert Organization.objects.count() == 1
    assert Project.objects.count() == 1
    assert second["organization_id"] == first["organization_id"]
    assert second["project_id"] == first["project_id"]
    assert second["user_id"] != first["user_id"]
    assert again["user_id"] == first["user_id"]
    assert again["key"] != first["key"]
    assert ProjectMembership.objects.filter(project_id=first["project_id"]).count() == 2


def test_a_second_project_keeps_the_users_current_project():
    first = create_key("--email", "ada@example.com", "--project", "Web")
    second = create_key("--email", "ada@example.com", "--project", "Mobile")

    user = User.objects.get(email="ada@example.com")
    assert second["project_id"] != first["project_id"]
    assert user.current_project_id == first["project_id"]
    assert set(user.project_memberships.values_list("project_id", flat=True)) == {
        first["project_id"],
        second["project_id"],
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "not-an-email"], "--email: 'not-an-email' is not a valid email address."),
        (
            ["--email", "ada@example.com", "--scopes", ""],
            '--scopes must name at least one scope, e.g. "experiment:read" or "*".',
        ),
        (
            ["--email", "ada@example.com", "--scopes", " , "],
            '--scopes must name at least one scope, e.g. "experiment:read" or "*".',
        ),
        (["--email", "ada@example.com", "--organization", " "], "--organization must not be empty."),
        (["--email", "ada@example.com", "--project", ""], "--project must not be empty."),
        (
            ["--email", "ada@example.com", "--scopes", "experiment:read,experiment:admin"],
            "--scopes: Unknown scope(s): experiment:admin. Valid scopes are: "
            "*, cohort:read, cohort:write, event_definition:read, event_definition:write, experiment:read, "
            "experiment:write, feature_flag:read, feature_flag:write, person:read, person:write, project:read, project:write, query:read, "
            "query:write.",
        ),
        ([], "Error: the following arguments are required: --email"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(args, message):
    with pytest.raises(CommandError) as error:
        call_command("create_personal_api_key", *args, stdout=StringIO())

    assert str(error.value) == message
    assert not User.objects.exists()
    assert not Organization.objects.exists()
    assert not PersonalAPIKey.objects.exists()


def test_seed_demo_runs_twice_and_reuses_the_demo_tenant():
    first_stdout, second_stdout = StringIO(), StringIO()

    call_command("seed_demo", stdout=first_stdout)
    call_command("seed_demo", stdout=second_stdout)

    first = json.loads(first_stdout.getvalue())
    second = json.loads(second_stdout.getvalue())
    assert second["project_id"] == first["project_id"]
    assert second["project_api_token"] == first["project_api_token"]
    assert first["key"].startswith("phx_")
    assert User.objects.get(email=first["login"]["email"]).check_password(first["login"]["password"])
    assert Organization.objects.filter(name="Demo organization").count() == 1


def test_the_printed_key_works_against_the_api_with_its_scopes():
    output = create_key("--email", "ada@example.com", "--scopes", "experiment:read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {output['key']}")
    url = f"/api/projects/{output['project_id']}/experiments/"

    listed = client.get(url)
    created = client.post(url, {"name": "Checkout test", "feature_flag_key": "checkout-test"}, format="json")

    assert listed.status_code == 200
    assert listed.json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert created.status_code == 403
    assert created.json() == missing_scope("experiment:write")
