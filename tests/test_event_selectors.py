"""Selectors over the event store that experiments read: `$feature/…` properties seen, unknown event names."""

import datetime as dt

import pytest
from django.utils import timezone

from events.selectors import FEATURE_PROPERTY_SAMPLE_SIZE, events_carry_feature_flag_properties, unknown_event_names
from tests.factories import EventDefinitionFactory, EventFactory, ProjectFactory

pytestmark = pytest.mark.django_db

WEEK_AGO = dt.timedelta(days=7)


def test_true_when_a_recent_event_carries_a_feature_property(project):
    EventFactory(project=project, event="purchase", properties={"$feature/checkout": "test", "amount": 3})

    assert events_carry_feature_flag_properties(
        project=project, event_names=["$pageview", "purchase"], since=timezone.now() - WEEK_AGO
    )


@pytest.mark.parametrize(
    "properties",
    [{"amount": 3}, {"$feature_flag": "checkout"}, {"note": "$feature/checkout"}, {"$feature_flag_response": "x"}],
)
def test_false_without_a_key_starting_with_feature(project, properties):
    EventFactory(project=project, event="purchase", properties=properties)

    assert not events_carry_feature_flag_properties(
        project=project, event_names=["purchase"], since=timezone.now() - WEEK_AGO
    )


def test_only_the_given_events_of_the_project_since_the_date_count(project):
    since = timezone.now() - WEEK_AGO
    EventFactory(project=project, event="signup", properties={"$feature/checkout": "test"})
    EventFactory(project=ProjectFactory(), event="purchase", properties={"$feature/checkout": "test"})
    EventFactory(
        project=project,
        event="purchase",
        properties={"$feature/checkout": "test"},
        timestamp=since - dt.timedelta(minutes=1),
    )

    assert not events_carry_feature_flag_properties(project=project, event_names=["purchase"], since=since)
    assert not events_carry_feature_flag_properties(project=project, event_names=[], since=since)


def test_only_a_sample_of_the_latest_events_is_read(project):
    now = timezone.now()
    EventFactory(
        project=project,
        event="purchase",
        properties={"$feature/checkout": "test"},
        timestamp=now - dt.timedelta(days=2),
    )
    for minute in range(FEATURE_PROPERTY_SAMPLE_SIZE):
        EventFactory(project=project, event="purchase", timestamp=now - dt.timedelta(minutes=minute))

    assert not events_carry_feature_flag_properties(project=project, event_names=["purchase"], since=now - WEEK_AGO)


def test_unknown_event_names_are_sorted_and_listed_once():
    project = ProjectFactory(seen_events=[])
    EventDefinitionFactory(project=project, name="purchase")
    EventDefinitionFactory(project=ProjectFactory(seen_events=[]), name="signup")

    assert unknown_event_names(project=project, names=["signup", "purchase", "$pageview", "signup"]) == [
        "$pageview",
        "signup",
    ]
