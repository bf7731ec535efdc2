"""factory-boy factories for the models tests build on."""

import factory

from experiments_api.models import Organization, Project, ProjectMembership, User
from experiments_api.services import personal_api_key_create


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Project {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.SelfAttribute("email")
    first_name = "Ada"


def member_of(project: Project, user: User | None = None) -> User:
    """A user who is a member of `project`, with it as current project."""
    user = user or UserFactory(current_project=project)
    ProjectMembership.objects.create(user=user, project=project)
    return user


def api_key_for(user: User, scopes: list[str] | None = None, scoped_projects: list[int] | None = None) -> str:
    _key, raw_value = personal_api_key_create(
        user=user, scopes=["*"] if scopes is None else scopes, scoped_projects=scoped_projects
    )
    return raw_value
