"""API access on every registered route: API-key scopes, project scoping (the one base viewset, @current) and
tenant isolation.

The route table is read from the router registry, so a new viewset or action is checked without editing it.
"""

from dataclasses import dataclass

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.urls import reverse
from rest_framework import viewsets
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

import experiments_api.urls  # noqa: F401  (importing the URLconf registers every app's viewsets)
from experiments_api.checks import check_project_viewsets_declare_scope
from experiments_api.exceptions import error_body
from experiments_api.mixins import DestroyNotAllowedMixin
from experiments_api.models import ProjectMembership
from experiments_api.permissions import required_scopes_for
from experiments_api.routing import (
    PROJECT_PREFIX,
    ProjectScopedViewSet,
    ProjectScopedViewSetMixin,
    projects_router,
    register_project_viewset,
)
from experiments_api.scopes import VALID_SCOPES, WILDCARD_SCOPE, scopes_grant, validate_scopes
from persons.messages import PERSON_NOT_FOUND
from tests.factories import (
    CohortFactory,
    ExperimentFactory,
    FeatureFlagFactory,
    HoldoutFactory,
    PersonFactory,
    ProjectFactory,
    SavedMetricFactory,
    member_of,
)
from tests.helpers import NOT_A_MEMBER, NOT_FOUND, PROJECT_NOT_FOUND, missing_scope, project_not_allowed_for_key


@pytest.mark.parametrize(
    ("granted", "required", "allowed"),
    [
        ([], "experiment:write", True),
        (["*"], "experiment:write", True),
        (["*"], "feature_flag:read", True),
        (["experiment:read"], "experiment:read", True),
        (["experiment:read"], "experiment:write", False),
        (["experiment:write"], "experiment:read", True),
        (["experiment:write"], "experiment:write", True),
        (["experiment:write"], "feature_flag:read", False),
        (["feature_flag:write"], "experiment:read", False),
        (["feature_flag:read", "experiment:read"], "feature_flag:read", True),
        (["feature_flag:read", "experiment:read"], "feature_flag:write", False),
    ],
)
def test_scopes_grant(granted, required, allowed):
    assert scopes_grant(granted, required) is allowed


def test_validate_scopes_accepts_known_scopes_and_the_wildcard():
    validate_scopes(["*", "experiment:read", "feature_flag:write"])


def test_validate_scopes_names_the_unknown_ones():
    with pytest.raises(ValidationError) as error:
        validate_scopes(["experiment:read", "experiments:read", "experiment:admin"])

    assert error.value.messages[0].startswith(
        "Unknown scope(s): experiment:admin, experiments:read. Valid scopes are: "
    )


def _view(**attributes) -> APIView:
    return type("SomeViewSet", (APIView,), attributes)()


@pytest.mark.parametrize(
    ("method", "attributes", "expected"),
    [
        ("GET", {"scope_object": "experiment"}, ["experiment:read"]),
        ("HEAD", {"scope_object": "experiment"}, ["experiment:read"]),
        ("OPTIONS", {"scope_object": "experiment"}, ["experiment:read"]),
        ("POST", {"scope_object": "experiment"}, ["experiment:write"]),
        ("PATCH", {"scope_object": "feature_flag"}, ["feature_flag:write"]),
        ("DELETE", {"scope_object": "feature_flag"}, ["feature_flag:write"]),
        ("GET", {"scope_object": "experiment", "required_scopes": ["feature_flag:read"]}, ["feature_flag:read"]),
        (
            "POST",
            {"required_scopes": ["experiment:write", "feature_flag:write"]},
            ["experiment:write", "feature_flag:write"],
        ),
    ],
)
def test_required_scopes_for_an_action(method, attributes, expected):
    request = APIRequestFactory().generic(method, "/")

    assert required_scopes_for(_view(**attributes), request) == expected


def test_a_view_without_scope_object_fails_loudly_instead_of_being_open():
    with pytest.raises(ImproperlyConfigured) as error:
        required_scopes_for(_view(), APIRequestFactory().get("/"))

    assert str(error.value) == (
        'SomeViewSet must declare `scope_object` (e.g. scope_object = "experiment") so API-key scopes can be checked.'
    )


METHOD_PUT_NOT_ALLOWED = error_body(
    type="invalid_request", code="method_not_allowed", detail='Method "PUT" not allowed.'
)


@pytest.fixture
def url(project) -> str:
    return f"/api/projects/{project.pk}/experiments/"


# A PUT on the list route reaches the 405 only after the write scope was granted, so it probes the scope
# check without depending on any create payload.
@pytest.mark.parametrize(
    ("scopes", "read_status", "write_status", "write_body"),
    [
        (["experiment:read"], 200, 403, missing_scope("experiment:write")),
        (["experiment:write"], 200, 405, METHOD_PUT_NOT_ALLOWED),
        (["experiment:read", "experiment:write"], 200, 405, METHOD_PUT_NOT_ALLOWED),
        (["*"], 200, 405, METHOD_PUT_NOT_ALLOWED),
        ([], 200, 405, METHOD_PUT_NOT_ALLOWED),
        (["feature_flag:write"], 403, 403, missing_scope("experiment:write")),
    ],
    ids=["read", "write", "read+write", "wildcard", "legacy-none", "wrong-object"],
)
def test_scope_matrix(make_client, user, url, scopes, read_status, write_status, write_body):
    client = make_client(user, scopes=scopes)

    read = client.get(url)
    write = client.put(url, {}, format="json")

    assert read.status_code == read_status
    if read_status == 403:
        assert read.json() == missing_scope("experiment:read")
    else:
        assert read.json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert write.status_code == write_status
    assert write.json() == write_body


def test_a_read_only_key_cannot_create(make_client, user, url):
    response = make_client(user, scopes=["experiment:read"]).post(
        url, {"name": "Checkout test", "feature_flag_key": "checkout-test"}, format="json"
    )

    assert response.status_code == 403
    assert response.json() == missing_scope("experiment:write")
    assert response.json()["detail"] == "API key missing required scope 'experiment:write'"  # PostHog's text


def test_a_write_key_can_create(make_client, user, url):
    response = make_client(user, scopes=["experiment:write"]).post(
        url, {"name": "Checkout test", "feature_flag_key": "checkout-test"}, format="json"
    )

    assert response.status_code == 201


def test_a_custom_action_needs_its_declared_scope_not_the_objects(make_client, user, url):
    experiment_key = make_client(user, scopes=["experiment:write"])
    flag_key = make_client(user, scopes=["feature_flag:read"])

    refused = experiment_key.get(f"{url}eligible_feature_flags/")
    allowed = flag_key.get(f"{url}eligible_feature_flags/")

    assert refused.status_code == 403
    assert refused.json() == missing_scope("feature_flag:read")
    assert allowed.status_code == 200


def test_a_session_login_is_not_scope_limited(user, url):
    client = APIClient()
    client.force_login(user)

    assert client.get(url).status_code == 200
    assert client.put(url, {}, format="json").json() == METHOD_PUT_NOT_ALLOWED
    created = client.post(url, {"name": "Checkout test", "feature_flag_key": "checkout-test"}, format="json")
    assert created.status_code == 201


def test_the_browsable_api_renders_for_a_logged_in_user(user, url):
    client = APIClient()
    client.force_login(user)

    response = client.get(url, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert b"Experiments" in response.content


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


EMPTY_PAGE = {"count": 0, "next": None, "previous": None, "results": []}


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


# Actions whose scope is not `<scope_object>:read` for GET and `<scope_object>:write` otherwise.
DECLARED_SCOPES = {
    "project_experiments-calculate-running-time": "experiment:read",
    "project_experiments-eligible-feature-flags": "feature_flag:read",
    "project_query-list": "query:read",
}
# One object of each detail route's model in a given project, to look up through another project.
OBJECT_FACTORIES = {
    "project_experiments": ExperimentFactory,
    "project_experiment_holdouts": HoldoutFactory,
    "project_experiment_saved_metrics": SavedMetricFactory,
    "project_feature_flags": FeatureFlagFactory,
    "project_cohorts": CohortFactory,
    "project_persons": PersonFactory,
}
# Bodies (query parameters for GET) that pass the actions' own validation, so the object lookup is what answers.
VALID_INPUTS = {
    "ship_variant": {"variant_key": "test"},
    "recalculate_timeseries": {"metric": {"uuid": "purchases"}, "fingerprint": "f" * 64},
    "timeseries_results": {"metric_uuid": "purchases", "fingerprint": "f" * 64},
}
PERSON_NOT_FOUND_BODY = error_body(type="invalid_request", code="not_found", detail=PERSON_NOT_FOUND)
UNKNOWN_RECALCULATION_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Route:
    """One HTTP method of one registered route, with the scope a key needs for it."""

    name: str
    method: str
    action: str
    basename: str
    viewset: type
    url_kwargs: tuple[str, ...]
    scope: str

    def url(self, project_id, pk=0) -> str:
        values = {"project_id": project_id, "pk": pk, "recalculation_id": UNKNOWN_RECALCULATION_ID}
        return reverse(self.name, kwargs={name: values[name] for name in self.url_kwargs})

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.name}"


def registered_routes() -> list[Route]:
    url_kwargs = {pattern.name: tuple(pattern.pattern.regex.groupindex) for pattern in projects_router.urls}
    routes = []
    for _prefix, viewset, basename in projects_router.registry:
        for route in projects_router.get_routes(viewset):
            name = route.name.format(basename=basename)
            for method, action_name in projects_router.get_method_map(viewset, route.mapping).items():
                level = "read" if method == "get" else "write"
                scope = DECLARED_SCOPES.get(name, f"{viewset.scope_object}:{level}")
                routes.append(Route(name, method, action_name, basename, viewset, url_kwargs[name], scope))
    return routes


ROUTES = registered_routes()
ROUTE_NAMES = sorted({route.name for route in ROUTES})
DETAIL_ROUTES = [route for route in ROUTES if "pk" in route.url_kwargs]


def key_scopes_without(scope: str) -> list[str]:
    """Every scope except the ones that grant `scope`."""
    return sorted(granted for granted in VALID_SCOPES - {WILDCARD_SCOPE} if not scopes_grant([granted], scope))


def test_the_table_covers_every_registered_viewset():
    assert {route.basename for route in ROUTES} == {basename for _p, _v, basename in projects_router.registry}
    assert {route.basename for route in DETAIL_ROUTES} <= set(OBJECT_FACTORIES)
    assert set(DECLARED_SCOPES) <= set(ROUTE_NAMES)


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_a_key_without_the_scope_is_refused_on_every_route(make_client, user, project, route):
    client = make_client(user, scopes=key_scopes_without(route.scope))

    response = getattr(client, route.method)(route.url(project.pk), {}, format="json")

    assert (response.status_code, response.json()) == (403, missing_scope(route.scope))


@pytest.mark.parametrize("route_name", ROUTE_NAMES)
@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_a_key_of_another_organization_is_refused_on_every_route(
    api_client, other_organization_project, route_name, method
):
    experiment_id = other_organization_project.experiments.get().pk
    route = next(route for route in ROUTES if route.name == route_name)
    url = route.url(other_organization_project.pk, experiment_id)

    response = getattr(api_client, method)(url, {}, format="json")

    assert response.status_code == 403
    assert response.json() == NOT_A_MEMBER


@pytest.mark.parametrize("route", DETAIL_ROUTES, ids=str)
def test_another_organizations_object_is_not_found_through_ones_own_project(api_client, project, route):
    foreign = OBJECT_FACTORIES[route.basename](project=ProjectFactory())
    data = (
        {"target_project_id": project.pk} if route.action == "copy_to_project" else VALID_INPUTS.get(route.action, {})
    )

    response = getattr(api_client, route.method)(route.url(project.pk, foreign.pk), data, format="json")

    if route.action == "destroy" and issubclass(route.viewset, DestroyNotAllowedMixin):
        # Soft-deleted resources answer DELETE with 405 and an empty body, as for an unknown id.
        assert (response.status_code, response.content) == (405, b"")
    else:
        # Persons answer PostHog's own message.
        not_found = PERSON_NOT_FOUND_BODY if route.basename == "project_persons" else NOT_FOUND
        assert (response.status_code, response.json()) == (404, not_found)


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
    assert response.json() == project_not_allowed_for_key(project.pk)


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
    assert response.json() == project_not_allowed_for_key(project.pk)


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
