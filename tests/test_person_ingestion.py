"""Persons at ingestion: PostHog's property rules, the three merge cases and refused merges, personless events,
overrides for merges that arrive after the events they affect, bounded statements, concurrent batches."""

import datetime as dt
import threading
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import Event
from events.services import events_ingest
from persons.models import Person, PersonDistinctId, PersonlessDistinctId, PersonOverride, person_uuid
from persons.properties import distinct_id_is_illegal
from persons.selectors import person_for_distinct_id
from tests.event_stores import DATABASE_STORE
from tests.factories import ProjectFactory

pytestmark = [pytest.mark.django_db, pytest.mark.every_database]

TIMESTAMP = "2026-01-15T10:00:00+00:00"


def event(name="$pageview", distinct_id="anon-1", properties=None, **extra) -> dict:
    return {
        "event": name,
        "distinct_id": distinct_id,
        "uuid": str(uuid.uuid4()),
        "timestamp": TIMESTAMP,
        "properties": properties or {},
        **extra,
    }


def identify(distinct_id, anon, **properties) -> dict:
    return event("$identify", distinct_id, {"$anon_distinct_id": anon, **properties})


def alias(distinct_id, other) -> dict:
    return event("$create_alias", distinct_id, {"alias": other})


def ingest(project, *events):
    result = events_ingest(project=project, events=list(events))
    assert not result.rejected
    return result


def person_of(project, distinct_id) -> Person | None:
    return person_for_distinct_id(project_id=project.pk, distinct_id=distinct_id)


def ids_of(person: Person) -> set[str]:
    return set(person.distinct_ids.values_list("distinct_id", flat=True))


def overrides(project) -> dict:
    return dict(PersonOverride.objects.filter(project=project).values_list("old_person_id", "new_person_id"))


def event_person_ids(project) -> dict[str, set]:
    found: dict[str, set] = {}
    for distinct_id, person_id in Event.objects.filter(project=project).values_list("distinct_id", "person_id"):
        found.setdefault(distinct_id, set()).add(person_id)
    return found


@pytest.fixture
def project(db):
    return ProjectFactory()


def test_an_event_creates_its_person_with_the_deterministic_uuid(project):
    ingest(project, event(distinct_id="user-1", properties={"$set": {"plan": "pro"}}))

    person = person_of(project, "user-1")
    assert person.uuid == uuid.uuid5(uuid.UUID("932979b4-65c3-4424-8467-0b66ec27bc22"), f"{project.pk}:user-1")
    assert person.is_identified is False
    assert person.properties["plan"] == "pro"
    assert event_person_ids(project) == {"user-1": {person.uuid}}


def test_set_once_set_and_unset_in_one_event(project):
    ingest(project, event(distinct_id="u", properties={"$set": {"kept": None, "gone": 1}}))
    ingest(
        project,
        event(
            distinct_id="u",
            properties={
                "$set_once": {"a": 1, "kept": "new", "fresh": "x"},
                "$set": {"a": 2, "gone": 2},
                "$unset": ["gone", "missing"],
            },
        ),
    )

    properties = person_of(project, "u").properties
    # $set wins over $set_once; $set_once leaves a stored null alone; set then unset removes; unset of a missing
    # key does nothing.
    assert {key: properties.get(key, "<absent>") for key in ("a", "kept", "fresh", "gone", "missing")} == {
        "a": 2,
        "kept": None,
        "fresh": "x",
        "gone": "<absent>",
        "missing": "<absent>",
    }


def test_unset_as_an_object_and_top_level_sets_win(project):
    ingest(project, event(distinct_id="u", properties={"$set": {"a": 1, "b": 1}}))
    ingest(
        project,
        event(
            "$identify",
            "u",
            {"$set": {"plan": "free"}, "$unset": {"b": True}},
            **{"$set": {"plan": "pro"}, "$set_once": {"first": "yes"}},
        ),
    )

    properties = person_of(project, "u").properties
    assert (properties["plan"], properties["first"], "b" in properties) == ("pro", "yes", False)


def test_event_properties_become_person_and_initial_properties(project):
    ingest(project, event(distinct_id="u", properties={"$browser": "Firefox", "utm_source": "ads"}))
    ingest(project, event(distinct_id="u", properties={"$browser": "Safari"}))  # a noisy change alone: no write
    assert person_of(project, "u").properties["$browser"] == "Firefox"

    ingest(project, event(distinct_id="u", properties={"$browser": "Chrome", "$set": {"plan": "pro"}}))

    properties = person_of(project, "u").properties
    assert {key: properties[key] for key in ("$browser", "$initial_browser", "utm_source", "$initial_utm_source")} == {
        "$browser": "Chrome",
        "$initial_browser": "Firefox",
        "utm_source": "ads",
        "$initial_utm_source": "ads",
    }


def test_updates_apply_in_processing_order_not_by_timestamp(project):
    late_old = event(distinct_id="u", properties={"$set": {"plan": "old"}}, timestamp="2026-01-01T00:00:00+00:00")
    ingest(project, event(distinct_id="u", properties={"$set": {"plan": "new"}}), late_old)

    assert person_of(project, "u").properties["plan"] == "old"


def test_identify_with_neither_person_creates_one_identified_person(project):
    ingest(project, identify("user-1", "anon-1", **{"$set": {"email": "a@example.com"}}))

    person = person_of(project, "user-1")
    assert ids_of(person) == {"user-1", "anon-1"}
    assert (person.is_identified, person.uuid, person.properties["email"]) == (
        True,
        person_uuid(project.pk, "user-1"),
        "a@example.com",
    )
    assert overrides(project) == {}


def test_identify_adds_the_new_id_to_the_anonymous_person(project):
    ingest(project, event(distinct_id="anon-1", properties={"$set": {"seen": 1}}))
    ingest(project, identify("user-1", "anon-1"))

    person = person_of(project, "anon-1")
    assert ids_of(person) == {"user-1", "anon-1"}
    assert (person.is_identified, person.uuid) == (True, person_uuid(project.pk, "anon-1"))
    # Both ids' events carry the anonymous person's uuid: no override needed.
    assert event_person_ids(project) == {"anon-1": {person.uuid}, "user-1": {person.uuid}}
    assert overrides(project) == {}


def test_an_identified_person_still_gains_a_new_id(project):
    ingest(project, identify("user-1", "anon-1"))
    ingest(project, identify("user-2", "user-1"))

    assert ids_of(person_of(project, "user-1")) == {"user-1", "anon-1", "user-2"}


def test_identify_merges_the_anonymous_person_into_the_identified_one(project):
    ingest(project, event(distinct_id="anon-1", properties={"$set": {"plan": "anon", "only_anon": 1}}))
    ingest(project, event(distinct_id="user-1", properties={"$set": {"plan": "user"}}))
    anonymous, user = person_of(project, "anon-1"), person_of(project, "user-1")
    Person.objects.filter(pk=anonymous.pk).update(created_at=anonymous.created_at - dt.timedelta(days=1))

    ingest(project, identify("user-1", "anon-1"))

    survivor = person_of(project, "anon-1")
    assert survivor.pk == user.pk and survivor.uuid == user.uuid
    assert ids_of(survivor) == {"anon-1", "user-1"}
    assert survivor.is_identified is True
    # The into side wins; the older created_at is kept; the merged person is gone.
    assert (survivor.properties["plan"], survivor.properties["only_anon"]) == ("user", 1)
    assert survivor.created_at == anonymous.created_at - dt.timedelta(days=1)
    assert not Person.objects.filter(pk=anonymous.pk).exists()
    assert PersonDistinctId.objects.get(distinct_id="anon-1").version == 1
    # The anonymous events keep their uuid until the squash; the override maps it to the survivor.
    assert overrides(project) == {anonymous.uuid: user.uuid}


def test_identify_refuses_to_merge_an_identified_person(project):
    ingest(project, identify("user-1", "anon-1"), identify("user-2", "anon-2"))
    first, second = person_of(project, "user-1"), person_of(project, "user-2")

    ingest(project, identify("user-2", "user-1", **{"$set": {"tried": True}}), alias("user-2", "user-1"))

    assert person_of(project, "user-1").pk == first.pk
    second.refresh_from_db()
    assert (ids_of(second), second.properties["tried"]) == ({"user-2", "anon-2"}, True)
    assert overrides(project) == {}


def test_merge_dangerously_merges_identified_persons(project):
    ingest(project, identify("user-1", "anon-1"), identify("user-2", "anon-2"))
    first, second = person_of(project, "user-1"), person_of(project, "user-2")

    ingest(project, event("$merge_dangerously", "user-2", {"alias": "user-1"}))

    assert person_of(project, "user-1").pk == second.pk
    assert ids_of(person_of(project, "user-2")) == {"user-1", "anon-1", "user-2", "anon-2"}
    assert overrides(project) == {first.uuid: second.uuid}


def test_alias_chain_is_one_person(project):
    ingest(project, event(distinct_id="a"))

    ingest(project, alias("a", "b"))
    ingest(project, alias("b", "c"))

    assert ids_of(person_of(project, "a")) == {"a", "b", "c"}


def test_aliasing_an_identified_persons_id_is_refused(project):
    ingest(project, event(distinct_id="a"), event(distinct_id="b"), event(distinct_id="c"))
    ingest(project, alias("b", "a"))  # b's person is now identified

    ingest(project, alias("c", "b"))

    assert ids_of(person_of(project, "b")) == {"a", "b"}
    assert ids_of(person_of(project, "c")) == {"c"}


def test_overrides_follow_a_second_merge(project):
    ingest(project, event(distinct_id="a"), event(distinct_id="b"), event(distinct_id="c"))
    a, b, c = (person_of(project, name) for name in "abc")

    ingest(project, alias("b", "a"))
    ingest(project, event("$merge_dangerously", "c", {"alias": "b"}))

    assert ids_of(person_of(project, "a")) == {"a", "b", "c"} and person_of(project, "a").pk == c.pk
    # The earlier override a→b was redirected to c when b merged into c.
    assert overrides(project) == {a.uuid: c.uuid, b.uuid: c.uuid}


def test_a_merge_within_one_batch_needs_no_override(project):
    ingest(project, event(distinct_id="anon-1"), event(distinct_id="user-1"), identify("user-1", "anon-1"))

    person = person_of(project, "user-1")
    assert ids_of(person) == {"anon-1", "user-1"}
    assert event_person_ids(project) == {"anon-1": {person.uuid}, "user-1": {person.uuid}}
    assert Person.objects.filter(project=project).count() == 1
    assert overrides(project) == {}


@pytest.mark.parametrize(
    "anon",
    ["anonymous", "Guest", "distinct_id", "null", "0", "'undefined'", '"None"', "NaN", "true", " ", "[object Object]"],
)
def test_illegal_ids_are_never_merged_but_the_event_is_kept(project, anon):
    ingest(project, identify("user-1", anon))

    person = person_of(project, "user-1")
    assert (ids_of(person), person.is_identified) == ({"user-1"}, False)
    assert Event.objects.filter(project=project, event="$identify").count() == 1


@pytest.mark.parametrize("legal", ["nan", "NULL", "00", " anonymous"])
def test_lookalike_ids_are_legal(legal):
    assert distinct_id_is_illegal(legal) is False


def test_identify_with_itself_or_without_anon_id_changes_nothing(project):
    ingest(project, identify("user-1", "user-1"), event("$identify", "user-2"))

    assert person_of(project, "user-1").is_identified is False
    assert (ids_of(person_of(project, "user-2")), person_of(project, "user-2").is_identified) == ({"user-2"}, False)


def test_ids_are_case_sensitive_and_numbers_are_strings(project):
    ingest(project, event(distinct_id=123), event(distinct_id="User"), event(distinct_id="user"))

    assert person_of(project, "123") is not None
    assert person_of(project, "User").pk != person_of(project, "user").pk


def test_personless_events_create_no_person_and_carry_their_ids_uuid(project):
    ingest(project, event(distinct_id="anon-1", properties={"$process_person_profile": False, "$set": {"a": 1}}))

    assert person_of(project, "anon-1") is None
    assert PersonlessDistinctId.objects.filter(project=project, distinct_id="anon-1", is_merged=False).exists()
    assert event_person_ids(project) == {"anon-1": {person_uuid(project.pk, "anon-1")}}


def test_personless_id_then_identify_gets_an_override(project):
    personless = {"$process_person_profile": False}
    ingest(project, event(distinct_id="user-1"), event(distinct_id="anon-1", properties=personless))

    ingest(project, identify("user-1", "anon-1"))

    person = person_of(project, "anon-1")
    assert person.uuid == person_uuid(project.pk, "user-1")
    assert PersonDistinctId.objects.get(distinct_id="anon-1").version == 1
    assert PersonlessDistinctId.objects.get(distinct_id="anon-1").is_merged is True
    assert overrides(project) == {person_uuid(project.pk, "anon-1"): person.uuid}


def test_identify_of_a_personless_anonymous_id_takes_its_uuid(project):
    ingest(project, event(distinct_id="anon-1", properties={"$process_person_profile": False}))

    ingest(project, identify("user-1", "anon-1"))

    assert person_of(project, "user-1").uuid == person_uuid(project.pk, "anon-1")
    assert overrides(project) == {}


def test_a_personless_event_of_a_person_over_a_minute_old_is_attributed_to_it(project):
    ingest(project, identify("user-1", "anon-1"))
    Person.objects.filter(project=project).update(created_at=timezone.now() - dt.timedelta(seconds=61))
    before = person_of(project, "anon-1")

    ingest(project, event(distinct_id="anon-1", properties={"$process_person_profile": False, "$set": {"x": 1}}))

    after = person_of(project, "anon-1")
    assert (after.properties, after.version) == (before.properties, before.version)
    assert event_person_ids(project)["anon-1"] == {before.uuid}
    assert not PersonlessDistinctId.objects.filter(project=project, is_merged=False).exists()


def test_a_personless_event_of_a_person_under_a_minute_old_stays_personless(project):
    ingest(project, identify("user-1", "anon-1"))
    Person.objects.filter(project=project).update(created_at=timezone.now() - dt.timedelta(seconds=50))
    before = person_of(project, "anon-1")

    ingest(project, event(distinct_id="anon-1", properties={"$process_person_profile": False, "$set": {"x": 1}}))

    after = person_of(project, "anon-1")
    assert (after.properties, after.version) == (before.properties, before.version)
    assert before.uuid == person_uuid(project.pk, "user-1")
    assert event_person_ids(project)["anon-1"] == {person_uuid(project.pk, "anon-1")}
    assert person_of(project, "anon-1").pk == person_of(project, "user-1").pk


def test_a_personless_event_of_an_id_joining_an_old_person_in_its_batch_is_attributed_to_it(project):
    personless = {"$process_person_profile": False}
    ingest(project, event(distinct_id="user-1"))
    Person.objects.filter(project=project).update(created_at=timezone.now() - dt.timedelta(minutes=5))

    ingest(project, identify("user-1", "anon-1"), event(distinct_id="anon-1", properties=personless))

    # The person is old, so the personless event of the id that just joined it is attributed to it.
    assert event_person_ids(project)["anon-1"] == {person_uuid(project.pk, "user-1")}


@pytest.mark.parametrize("name", ["$identify", "$create_alias", "$merge_dangerously", "$groupidentify"])
def test_merge_events_sent_personless_are_dropped(project, name):
    result = ingest(project, event(name, "user-1", {"$process_person_profile": False, "$anon_distinct_id": "a"}))

    assert (result.stored, result.dropped, result.accepted) == (0, 1, 1)
    assert not Event.objects.filter(project=project).exists()
    assert not Person.objects.filter(project=project).exists()


def test_a_non_boolean_process_person_profile_counts_as_true(project):
    ingest(project, event(distinct_id="u", properties={"$process_person_profile": "false"}))

    assert person_of(project, "u") is not None


def test_a_deleted_person_comes_back_with_the_same_uuid(project):
    ingest(project, event(distinct_id="u"))
    first = person_of(project, "u")
    first.delete()

    ingest(project, event(distinct_id="u"))

    assert person_of(project, "u").uuid == first.uuid


@pytest.mark.skipif(
    DATABASE_STORE == "sqlite", reason="SQLite's person step is the ORM's bulk writes, split at its variable limit"
)
def test_a_batch_is_a_bounded_number_of_statements_whatever_its_size(project):
    def mixed_batch(size: int, prefix: str) -> list[dict]:
        batch = []
        for number in range(size):
            anon, user = f"{prefix}-anon-{number}", f"{prefix}-user-{number}"
            batch.append(event(distinct_id=anon, properties={"$process_person_profile": False}))
            batch.append(event(distinct_id=user, properties={"$set": {"n": number}}))
            if number % 10 == 0:
                batch.append(identify(user, anon))
        return batch

    ingest(project, *mixed_batch(5, "warm"))  # partition and first persons
    counts = []
    for size, prefix in ((20, "small"), (400, "large")):
        with CaptureQueriesContext(connection) as captured:
            ingest(project, *mixed_batch(size, prefix))
        counts.append(len(captured.captured_queries))
    for size in (10, 200):
        ingest(project, *(event(distinct_id=f"into-{size}-{n}") for n in range(size)))
        ingest(project, *(event(distinct_id=f"other-{size}-{n}", properties={"$set": {"n": n}}) for n in range(size)))
        with CaptureQueriesContext(connection) as captured:
            ingest(project, *(identify(f"into-{size}-{n}", f"other-{size}-{n}") for n in range(size)))
        counts.append(len(captured.captured_queries))
        assert person_of(project, f"other-{size}-3").pk == person_of(project, f"into-{size}-3").pk

    assert counts[0] == counts[1]
    assert counts[2] == counts[3]


@pytest.mark.skipif(DATABASE_STORE == "sqlite", reason="SQLite serialises its writers; the race is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_never_create_two_persons_for_one_id():
    project = ProjectFactory()
    threads_count, rounds = 4, 5
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_count)

    def send(worker: int) -> None:
        try:
            for round_number in range(rounds):
                barrier.wait()
                batch = [event(distinct_id=f"shared-{n}", properties={"$set": {f"w{worker}": n}}) for n in range(20)]
                batch += [identify(f"user-{round_number}", f"anon-{round_number}-{worker}")]
                batch += [alias(f"shared-{round_number}", f"anon-{round_number}-{(worker + 1) % threads_count}")]
                events_ingest(project=project, events=batch)
        except BaseException as error:  # noqa: BLE001 (reported by the main thread)
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for number in range(20):
        person = person_of(project, f"shared-{number}")
        # Every worker's $set landed on the one person.
        assert all(person.properties.get(f"w{worker}") == number for worker in range(threads_count))
    assert PersonDistinctId.objects.filter(project=project).values("distinct_id").distinct().count() == (
        PersonDistinctId.objects.filter(project=project).count()
    )
    for round_number in range(rounds):
        # user-r and every anon-r-* ended as one person; shared-r too (alias of anon ids).
        anons = {person_of(project, f"anon-{round_number}-{worker}").pk for worker in range(threads_count)}
        assert len(anons) <= 2
        assert person_of(project, f"user-{round_number}").pk in anons
    assert set(Person.objects.filter(project=project).values_list("uuid", flat=True)) >= {
        person_of(project, "shared-5").uuid
    }


MERGE_CHAIN_BATCHES = [
    [
        event(distinct_id="anon-1", properties={"$process_person_profile": False}),
        event(distinct_id="anon-2", properties={"$process_person_profile": False}),
        event(distinct_id="user-1", properties={"$set": {"plan": "free"}, "$set_once": {"first": 1}}),
        event(distinct_id="user-3", properties={"$set": {"plan": "team"}}),
    ],
    [
        identify("user-1", "anon-1", **{"$set": {"plan": "pro"}}),
        identify("user-2", "anon-2"),
        event(distinct_id="anon-2", properties={"$process_person_profile": False}),
        alias("user-4", "user-1"),
    ],
    [
        event("$merge_dangerously", "user-3", {"alias": "user-1"}),
        identify("user-2", "user-3"),
        event(distinct_id="user-4", properties={"$unset": ["first"]}),
    ],
]


def person_state(project) -> dict:
    """Persons, distinct ids, overrides and the events' person ids, with every uuid written as the distinct id it
    derives from."""
    ids = set(PersonDistinctId.objects.filter(project=project).values_list("distinct_id", flat=True))
    ids |= set(Event.objects.filter(project=project).values_list("distinct_id", flat=True))
    named = {str(person_uuid(project.pk, distinct_id)): distinct_id for distinct_id in ids}
    persons = {
        named[str(person.uuid)]: {
            "identified": person.is_identified,
            "properties": {key: value for key, value in person.properties.items() if key != "$creator_event_uuid"},
            "distinct_ids": sorted(person.distinct_ids.values_list("distinct_id", flat=True)),
        }
        for person in Person.objects.filter(project=project)
    }
    return {
        "persons": persons,
        "overrides": sorted([named[str(old)], named[str(new)]] for old, new in overrides(project).items()),
        "events": sorted(
            [str(uuid_), named[str(person_id)]]
            for uuid_, person_id in Event.objects.filter(project=project).values_list("uuid", "person_id")
        ),
        "personless": sorted(
            PersonlessDistinctId.objects.filter(project=project).values_list("distinct_id", "is_merged")
        ),
    }


def test_a_chain_of_merges_across_batches_ends_in_one_survivor(project):
    for batch in MERGE_CHAIN_BATCHES:
        ingest(project, *batch)
    state = person_state(project)

    # user-1's person (anon-1 joined it, then user-4) merged into user-3's; user-2 (identified) refused user-3.
    assert state["persons"]["user-3"] == {
        "identified": True,
        "properties": {"plan": "team"},
        "distinct_ids": ["anon-1", "user-1", "user-3", "user-4"],
    }
    assert "user-1" not in state["persons"]
    assert ["anon-1", "user-3"] in state["overrides"] and ["user-1", "user-3"] in state["overrides"]


def persons_snapshot(project) -> dict:
    """Every person of the project with its properties (less the creator event), ids and identified flag, and the
    overrides: what a malformed update must leave as it was."""
    persons = {}
    for person in Person.objects.filter(project=project):
        properties = {key: value for key, value in person.properties.items() if key != "$creator_event_uuid"}
        persons[str(person.uuid)] = (properties, ids_of(person), person.is_identified)
    return {"persons": persons, "overrides": overrides(project)}


MALFORMED_UPDATES = {
    "$set a string": {"$set": "plan=free"},
    "$set a list": {"$set": ["plan", "free"]},
    "$set a number": {"$set": 5},
    "$set null": {"$set": None},
    "$set_once a string": {"$set_once": "seats"},
    "$set_once a list": {"$set_once": [{"seats": 1}]},
    "$unset a string": {"$unset": "plan"},
    "$unset a number": {"$unset": 1},
    "$unset of keys that are not text": {"$unset": [1, None, {"plan": True}, ["plan"]]},
}


# Where each may be sent: `$unset` only among the properties, `$set`/`$set_once` also at the top (posthog-js).
MALFORMED_PLACES = [
    pytest.param(update, place, id=f"{name} in {place}")
    for name, update in MALFORMED_UPDATES.items()
    for place in ("properties", "top level")
    if place == "properties" or "$unset" not in update
]


@pytest.mark.parametrize(("update", "place"), MALFORMED_PLACES)
def test_a_malformed_property_update_is_ignored_and_the_event_stored(project, update, place):
    """PostHog applies `$set`/`$set_once` as objects and `$unset` as a list or object of keys; anything else is
    ignored here (PostHog's ingestion would spread a string or list into index keys "0", "1", …), the event is
    kept and nothing else about the person changes."""
    ingest(project, event("$set", "user-1", {"$set": {"plan": "pro"}, "$set_once": {"seats": 3}}))
    before = persons_snapshot(project)
    body = event("$pageview", "user-1", update) if place == "properties" else event("$pageview", "user-1", **update)

    result = ingest(project, body)

    assert (result.stored, result.dropped) == (1, 0)
    assert persons_snapshot(project) == before
    assert Event.objects.filter(project=project, uuid=body["uuid"]).exists()


def test_the_valid_parts_of_an_update_still_apply(project):
    ingest(project, event("$set", "user-1", {"$set": {"plan": "pro", "seats": 3}}))

    ingest(project, event("$set", "user-1", {"$set": "nope", "$set_once": {"company": "Acme"}, "$unset": ["seats", 7]}))

    assert persons_snapshot(project)["persons"][str(person_of(project, "user-1").uuid)][0] == {
        "plan": "pro",
        "company": "Acme",
    }


MALFORMED_MERGE_IDS = {
    "null": None,
    "an object": {"id": "anon-1"},
    "a list": ["anon-1"],
    "a boolean": True,
    "false": False,
    "empty": "",
    "too long": "a" * 401,
}


@pytest.mark.parametrize("other", MALFORMED_MERGE_IDS.values(), ids=MALFORMED_MERGE_IDS.keys())
@pytest.mark.parametrize("name", ["$identify", "$create_alias", "$merge_dangerously"])
def test_a_merge_id_that_is_no_distinct_id_merges_nothing_and_the_event_is_stored(project, name, other):
    """`$anon_distinct_id` of an identify, `alias` of an alias or merge, must be a distinct id (text, or a number
    read as text). PostHog turns null, objects and booleans into text that is an illegal id ("null",
    "[object Object]", "true") and refuses the merge; a list or an id longer than any event's distinct id can be is
    refused here too. The event is stored; neither person changes and no override is written."""
    ingest(project, event("$pageview", "anon-1"), event("$set", "user-1", {"$set": {"plan": "pro"}}))
    before = persons_snapshot(project)
    key = "$anon_distinct_id" if name == "$identify" else "alias"
    body = event(name, "user-1", {key: other})

    result = ingest(project, body)

    assert (result.stored, result.dropped) == (1, 0)
    assert persons_snapshot(project) == before
    assert Event.objects.filter(project=project, uuid=body["uuid"]).exists()


def test_a_numeric_merge_id_is_its_text(project):
    ingest(project, event("$pageview", "123"))

    ingest(project, event("$create_alias", "user-1", {"alias": 123}))

    assert ids_of(person_of(project, "user-1")) == {"123", "user-1"}


def test_text_postgresql_cannot_store_is_replaced_in_persons_and_merge_ids_as_in_events(project):
    """NUL characters (and lone surrogates) become U+FFFD in the event, and so in the person's properties and in
    the ids a merge adds: the batch is stored, not refused by the database."""
    ingest(project, event("$pageview", "z\ufffd"))

    result = ingest(
        project,
        event("$set", "user-1", {"$set": {"plan": "pro\x00", "a\x00": 1}}, **{"$set_once": {"seats": "\ud800"}}),
        event("$create_alias", "user-1", {"alias": "z\x00"}),
    )

    assert result.stored == 2
    person = person_of(project, "user-1")
    assert persons_snapshot(project)["persons"][str(person.uuid)] == (
        {"plan": "pro\ufffd", "a\ufffd": 1, "seats": "\ufffd"},
        {"user-1", "z\ufffd"},
        True,
    )
