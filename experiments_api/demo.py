"""Demo data for the embedded default: an organization, a project, a login and an API key."""

from experiments_api.services import member_with_project_ensure, personal_api_key_create

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"
DEMO_ORGANIZATION = "Demo organization"
DEMO_PROJECT = "Demo project"


def seed_demo() -> dict:
    user, project = member_with_project_ensure(
        email=DEMO_EMAIL, organization_name=DEMO_ORGANIZATION, project_name=DEMO_PROJECT
    )
    if not user.has_usable_password():
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    _key, raw_value = personal_api_key_create(user=user, scopes=["*"], label="demo")
    return {
        "login": {"email": DEMO_EMAIL, "username": user.username, "password": DEMO_PASSWORD},
        "key": raw_value,
        "project_id": project.pk,
        "project_api_token": project.api_token,
    }
