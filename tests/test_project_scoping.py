"""Project scoping: every registered viewset uses the base, projects resolve (@current), and tenants stay apart."""

import pytest
from django.core import checks
from django.urls import reverse
from rest_framework import viewsets

import experiments_api.urls  # noqa: F401  (importing the URLconf registers every app's viewsets)
from experiments_api.checks import check_project_viewsets_declare_scope
from experiments_api.exceptions import error_body
from experiments_api.models import ProjectMembership
from experiments_api.routing import (
    PROJECT_PREFIX,
    ProjectScopedViewSet,
    ProjectScopedViewSetMixin,
    projects_router,
    register_project_viewset,
)
from tests.factories import ProjectFactory, member_of


class ViewSetWithoutScopeObject(ProjectScopedViewSet):
    queryset = ProjectMembership.objects.all()


@pytest.fixture
def viewset_without_scope_object_registered():
    register_project_viewset("things_without_scope", ViewSetWithoutScopeObject, "thing-without-scope")
    yield
    projects_router.registry[:] = [
        entry for entry in projects_router.registry if entry[1] is not ViewSetWithoutScopeObject
    ]


def test_every_registered_viewset_inherits_the_base_and_declares_its_scope_object():
    assert projects_router.registry
    for prefix, viewset, _basename in projects_router.registry:
        assert issubclass(viewset, ProjectScopedViewSetMixin), prefix
        assert viewset.scope_object, prefix


def test_the_system_check_passes_for_the_registered_viewsets():
    assert check_project_viewsets_declare_scope(None) == []


def test_the_system_check_reports_a_viewset_without_scope_object(viewset_without_scope_object_registered):
    expected = checks.Error(
        f"ViewSetWithoutScopeObject at {PROJECT_PREFIX}/things_without_scope does not declare scope_object.",
        hint='Set scope_object = "<object>" so API-key scopes are enforced.',
        id="api.E002",
    )

    assert check_project_viewsets_declare_scope(None) == [expected]
    assert expected in checks.run_checks(tags=[checks.Tags.security])


def test_registering_a_viewset_outside_the_base_is_refused():
    registry_before = list(projects_router.registry)

    with pytest.raises(TypeError) as error:
        register_project_viewset("plain", viewsets.ModelViewSet, "plain")

    assert str(error.value) == "ModelViewSet must inherit ProjectScopedViewSetMixin to be registered under a project."
    assert projects_router.registry == registry_before


@pytest.mark.parametrize("method_name", ["get_queryset", "get_permissions", "initial"])
def test_a_subclass_cannot_override_the_scoping_methods(method_name):
    with pytest.raises(TypeError) as error:
        type("BypassingViewSet", (ProjectScopedViewSet,), {method_name: lambda self: None})

    assert str(error.value) == (
        f"BypassingViewSet overrides {method_name}, which would bypass project scoping. "
        "Override safely_get_queryset(queryset) or set extra_permission_classes instead."
    )


def test_overriding_get_queryset_through_the_mixin_alone_is_refused():
    with pytest.raises(TypeError) as error:

        class BypassingViewSet(ProjectScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
            def get_queryset(self):
                return ProjectMembership.objects.all()

    assert str(error.value) == (
        "BypassingViewSet overrides get_queryset, which would bypass project scoping. "
        "Override safely_get_queryset(queryset) or set extra_permission_classes instead."
    )


NOT_A_MEMBER = error_body(
    type="authentication_error", code="permission_denied", detail="You don't have access to the project."
)
PROJECT_NOT_FOUND = error_body(type="invalid_request", code="not_found", detail="Project not found.")
NOT_FOUND = error_body(type="invalid_request", code="not_found", detail="Not found.")
EMPTY_PAGE = {"count": 0, "next": None, "previous": None, "results": []}


def key_not_scoped_to(project) -> dict:
    return error_body(
        type="authentication_error",
        code="permission_denied",
        detail=f"API key does not have access to the requested project: ID {project.pk}.",
    )


def experiments_url(project_id) -> str:
    return f"/api/projects/{project_id}/experiments/"


def create_experiment(client, project, name: str) -> dict:
    response = client.post(
        experiments_url(project.pk), {"name": name, "feature_flag_key": name.lower().replace(" ", "-")}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.fixture
def other_organization_project(db, make_client):
    """A project of another organization, with its own member and an experiment of its own."""
    other_project = ProjectFactory()
    create_experiment(make_client(member_of(other_project)), other_project, "Org B secret")
    return other_project


def every_project_route() -> list:
    return [
        pytest.param(pattern.name, list(pattern.pattern.regex.groupindex), id=pattern.name)
        for pattern in projects_router.urls
    ]


@pytest.mark.parametrize(("route_name", "url_kwargs"), every_project_route())
@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_a_key_of_another_organization_is_refused_on_every_route(
    api_client, other_organization_project, route_name, url_kwargs, method
):
    experiment_id = other_organization_project.experiments.get().pk
    values = {
        "project_id": other_organization_project.pk,
        "pk": experiment_id,
        "recalculation_id": "00000000-0000-0000-0000-000000000000",
    }
    url = reverse(route_name, kwargs={name: values[name] for name in url_kwargs})

    response = getattr(api_client, method)(url, {}, format="json")

    assert response.status_code == 403
    assert response.json() == NOT_A_MEMBER


def test_a_key_never_sees_another_organizations_experiments(api_client, project, other_organization_project):
    own = create_experiment(api_client, project, "Org A test")
    foreign_id = other_organization_project.experiments.get().pk

    listed = api_client.get(experiments_url(project.pk)).json()
    retrieved = api_client.get(f"{experiments_url(project.pk)}{foreign_id}/")
    patched = api_client.patch(f"{experiments_url(project.pk)}{foreign_id}/", {"name": "Stolen"}, format="json")
    duplicated = api_client.post(f"{experiments_url(project.pk)}{foreign_id}/duplicate/", {}, format="json")

    assert [experiment["id"] for experiment in listed["results"]] == [own["id"]]
    assert [flag["key"] for flag in api_client.get(f"/api/projects/{project.pk}/feature_flags/").json()["results"]] == [
        "org-a-test"
    ]
    assert (retrieved.status_code, retrieved.json()) == (404, NOT_FOUND)
    assert (patched.status_code, patched.json()) == (404, NOT_FOUND)
    assert (duplicated.status_code, duplicated.json()) == (404, NOT_FOUND)
    assert other_organization_project.experiments.get().name == "Org B secret"


def test_a_project_of_the_same_organization_needs_membership(api_client, project):
    sibling = ProjectFactory(organization=project.organization)

    response = api_client.get(experiments_url(sibling.pk))

    assert response.status_code == 403
    assert response.json() == NOT_A_MEMBER


@pytest.mark.parametrize("project_id", ["999999", "0", "abc", "²", "99999999999999999999999"])
def test_an_unknown_project_is_404(api_client, project_id):
    response = api_client.get(experiments_url(project_id))

    assert response.status_code == 404
    assert response.json() == PROJECT_NOT_FOUND


def test_a_key_scoped_to_other_projects_is_refused(make_client, user, project):
    elsewhere = ProjectFactory(organization=project.organization)
    member_of(elsewhere, user)

    response = make_client(user, scoped_projects=[elsewhere.pk]).get(experiments_url(project.pk))

    assert response.status_code == 403
    assert response.json() == key_not_scoped_to(project)


@pytest.mark.parametrize("scoped", ["this project", "empty list"])
def test_a_key_scoped_to_the_project_or_to_no_list_is_allowed(make_client, user, project, scoped):
    """An empty `scoped_projects` list restricts nothing, as in PostHog."""
    scoped_projects = [project.pk] if scoped == "this project" else []
    response = make_client(user, scoped_projects=scoped_projects).get(experiments_url(project.pk))

    assert response.status_code == 200
    assert response.json() == EMPTY_PAGE


def test_current_resolves_to_the_users_current_project(api_client, user, project):
    second = ProjectFactory(organization=project.organization)
    member_of(second, user)
    in_first = create_experiment(api_client, project, "In first")
    in_second = create_experiment(api_client, second, "In second")

    first_listing = api_client.get(experiments_url("@current")).json()
    user.current_project = second
    user.save(update_fields=["current_project"])
    second_listing = api_client.get(experiments_url("@current")).json()

    assert [experiment["id"] for experiment in first_listing["results"]] == [in_first["id"]]
    assert [experiment["id"] for experiment in second_listing["results"]] == [in_second["id"]]


def test_current_without_a_current_project_is_404(api_client, user):
    user.current_project = None
    user.save(update_fields=["current_project"])

    response = api_client.get(experiments_url("@current"))

    assert response.status_code == 404
    assert response.json() == PROJECT_NOT_FOUND


def test_current_is_checked_against_the_keys_project_scope(make_client, user, project):
    elsewhere = ProjectFactory(organization=project.organization)

    response = make_client(user, scoped_projects=[elsewhere.pk]).get(experiments_url("@current"))

    assert response.status_code == 403
    assert response.json() == key_not_scoped_to(project)


def test_the_trailing_slash_is_optional_on_list_detail_and_action_routes(api_client, project):
    experiment = create_experiment(api_client, project, "Slashless")
    base = f"/api/projects/{project.pk}/experiments"

    responses = {
        path: api_client.get(path).status_code
        for path in (base, f"{base}/", f"{base}/{experiment['id']}", f"{base}/stats", f"{base}/stats/")
    }
    patched = api_client.patch(f"{base}/{experiment['id']}", {"name": "Renamed"}, format="json")

    assert responses == dict.fromkeys(responses, 200)
    assert (patched.status_code, patched.json()["name"]) == (200, "Renamed")
