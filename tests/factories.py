"""factory-boy factories for the models tests build on."""

import uuid as uuid_lib

import factory
from django.utils import timezone

from events.models import Event, EventDefinition
from experiments.models import Experiment, ExperimentHoldout, ExperimentSavedMetric
from experiments_api.models import Organization, Project, ProjectMembership, User
from experiments_api.services import personal_api_key_create
from flags.models import Cohort, FeatureFlag
from persons.models import Person

DEFAULT_SEEN_EVENTS = ("$pageview", "purchase", "checkout viewed", "click", "café ☕")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Project {n}")

    @factory.post_generation
    def seen_events(project, create, names, **kwargs):
        """A test project has already seen the events that metrics in tests use (experiments refuse metrics on
        unseen events unless `allow_unknown_events`); pass `seen_events=[]` for a project that has seen none."""
        if not create:
            return
        now = timezone.now()
        EventDefinition.objects.bulk_create(
            EventDefinition(project=project, name=name, first_seen_at=now, last_seen_at=now)
            for name in (DEFAULT_SEEN_EVENTS if names is None else names)
        )


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


def _control_test_filters() -> dict:
    return {
        "groups": [{"properties": [], "rollout_percentage": 100}],
        "multivariate": {
            "variants": [
                {"key": "control", "name": "Control", "rollout_percentage": 50},
                {"key": "test", "name": "Test", "rollout_percentage": 50},
            ]
        },
    }


class FeatureFlagFactory(factory.django.DjangoModelFactory):
    """A live multivariate flag with a 50/50 control/test split."""

    class Meta:
        model = FeatureFlag

    project = factory.SubFactory(ProjectFactory)
    key = factory.Sequence(lambda n: f"flag-{n}")
    name = factory.Sequence(lambda n: f"Flag {n}")
    filters = factory.LazyFunction(_control_test_filters)


class CohortFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cohort

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"Cohort {n}")
    filters = factory.LazyFunction(lambda: {"properties": {"type": "AND", "values": []}})


class HoldoutFactory(factory.django.DjangoModelFactory):
    """A holdout of 10% whose group is tagged with its variant, as the create service does."""

    class Meta:
        model = ExperimentHoldout
        skip_postgeneration_save = True

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"Holdout {n}")
    filters = factory.LazyFunction(lambda: [{"properties": [], "rollout_percentage": 10}])

    @factory.post_generation
    def tag_variant(holdout, create, extracted, **kwargs):
        holdout.filters = [{**group, "variant": f"holdout-{holdout.pk}"} for group in holdout.filters]
        if create:
            holdout.save(update_fields=["filters"])


class SavedMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExperimentSavedMetric

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"Saved metric {n}")
    query = factory.LazyFunction(lambda: mean_metric(uuid=str(uuid_lib.uuid4())))


class ExperimentFactory(factory.django.DjangoModelFactory):
    """A draft experiment on a new control/test flag of the same project."""

    class Meta:
        model = Experiment

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"Experiment {n}")
    feature_flag = factory.SubFactory(FeatureFlagFactory, project=factory.SelfAttribute("..project"))


def mean_metric(event: str = "$pageview", **extra) -> dict:
    """An inline mean `ExperimentMetric` as a client sends it (no uuid or fingerprint unless given)."""
    return {
        "kind": "ExperimentMetric",
        "metric_type": "mean",
        "source": {"kind": "EventsNode", "event": event},
        **extra,
    }


class EventFactory(factory.django.DjangoModelFactory):
    """A stored `$pageview` of one user (written with the ORM, so it lands in the DEFAULT partition)."""

    class Meta:
        model = Event

    project = factory.SubFactory(ProjectFactory)
    event = "$pageview"
    distinct_id = factory.Sequence(lambda n: f"user-{n}")
    properties = factory.LazyFunction(dict)


class EventDefinitionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EventDefinition

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"event-{n}")
    first_seen_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyFunction(timezone.now)


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    project = factory.SubFactory(ProjectFactory)
    uuid = factory.LazyFunction(uuid_lib.uuid4)
    properties = factory.LazyFunction(dict)
