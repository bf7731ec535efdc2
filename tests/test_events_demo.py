"""Demo events for an experiment flag: exposures split by the flag's hash, page views, purchases with amounts."""

from collections import Counter

import pytest

from events.demo import demo_events_create
from events.models import Event, EventDefinition
from flags.evaluation import VARIANT_SALT, bucket_hash
from persons.selectors import person_for_distinct_id
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def test_demo_events_are_stored_in_bulk_and_split_by_the_variant_hash():
    project = ProjectFactory(seen_events=[])

    count = demo_events_create(project=project, flag_key="checkout", variants=["control", "test"], days=5, users=200)

    events = Event.objects.filter(project=project)
    assert count == events.count() > 200 * 2
    exposures = events.filter(event="$feature_flag_called")
    assert exposures.count() == 200
    for exposure in exposures:
        expected = "control" if bucket_hash("checkout", exposure.distinct_id, salt=VARIANT_SALT) < 0.5 else "test"
        assert exposure.properties["$feature_flag"] == "checkout"
        assert exposure.properties["$feature_flag_response"] == expected
    days = Counter(event.timestamp.date() for event in events)
    assert len(days) >= 5
    purchases = events.filter(event="purchase")
    assert purchases.exists()
    assert all(isinstance(purchase.properties["amount"], float) for purchase in purchases)
    assert set(EventDefinition.objects.filter(project=project).values_list("name", flat=True)) == {
        "$feature_flag_called",
        "$pageview",
        "$identify",
        "purchase",
    }
    # Every third user was exposed anonymously and bought after logging in: one person, identified.
    crossing = [purchase for purchase in purchases if int(purchase.distinct_id.rsplit("-", 1)[1]) % 3 == 0]
    assert crossing
    for purchase in crossing:
        exposed = person_for_distinct_id(
            project_id=project.pk, distinct_id=purchase.distinct_id.replace("user", "anon")
        )
        assert exposed == person_for_distinct_id(project_id=project.pk, distinct_id=purchase.distinct_id)
        assert exposed.is_identified


def test_running_the_demo_again_adds_nothing():
    project = ProjectFactory(seen_events=[])
    demo_events_create(project=project, flag_key="checkout", variants=["control", "test"], days=3, users=20)

    again = demo_events_create(project=project, flag_key="checkout", variants=["control", "test"], days=3, users=20)

    assert again == 0
