"""Experiments count persons: an exposure under an anonymous id and a conversion under the identified id are one
unit in every metric kind, checked against the pure-Python reference (tests/metric_reference.py) with the merges
arriving after the events they affect (so the overrides table does the resolving)."""

import dataclasses
import datetime as dt
import json
from collections import Counter
from zoneinfo import ZoneInfo

import pytest

from events.clickhouse.client import clickhouse_client
from events.clickhouse.schema import DISTINCT_IDS_TABLE, OVERRIDES_TABLE, PERSONS_TABLE
from events.services import events_ingest
from experiments.metrics import MULTIPLE_VARIANT_KEY, daily_exposures
from persons.models import CohortPerson, Person, PersonDistinctId, PersonOverride
from persons.selectors import person_for_distinct_id
from tests.event_stores import stored_events
from tests.factories import CohortFactory, ExperimentFactory, FeatureFlagFactory, member_of
from tests.metric_reference import RawEvent, Setup, exposures, sample_identified_events
from tests.test_metric_aggregation import (
    CASES,
    FLAG_KEY,
    NEW_YORK,
    START,
    TEST_ACCOUNT_FILTERS,
    assert_matches_reference,
    daily_rows,
    day_boundaries,
    events_node,
    funnel,
    make_experiment,
    mean,
    ratio,
    retention,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_store")]

KINDS = (
    "count",
    "winsorized sum",
    "cuped count",
    "dau",
    "ordered funnel",
    "unordered funnel",
    "ratio",
    "retention, days, first seen",
    "retention, days, last seen, window",
)
BATCH = 500
DAY = dt.timedelta(days=1)
MEAN_PURCHASES = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase"},
}


def raw(event: RawEvent) -> dict:
    return {
        "event": event.event,
        "distinct_id": event.distinct_id,
        "uuid": event.uuid,
        "timestamp": event.timestamp.isoformat(),
        "properties": event.properties,
    }


def ingest(project, events: list[RawEvent]) -> None:
    for start in range(0, len(events), BATCH):
        result = events_ingest(project=project, events=[raw(event) for event in events[start : start + BATCH]])
        assert not result.rejected


def identified_experiment(options: dict):
    criteria = {"filterTestAccounts": True, "multiple_variant_handling": options.get("handling", "exclude")}
    stats_config = {"cuped": {"enabled": True, "lookback_days": options["cuped"]}} if "cuped" in options else None
    experiment = make_experiment(exposure_criteria=criteria, stats_config=stats_config)
    events, identifies, persons = sample_identified_events(7, start=START, flag_key=FLAG_KEY)
    ingest(experiment.project, events)
    # The logins arrive after every event they concern: those of units with events under both ids merge two
    # existing persons and leave an override.
    ingest(experiment.project, identifies)
    assert len(persons) / 3 < PersonOverride.objects.filter(project=experiment.project).count() <= len(persons)
    setup = Setup(
        flag_key=FLAG_KEY,
        variants=("control", "test"),
        start=START,
        end=None,
        tz=ZoneInfo(NEW_YORK),
        handling=criteria["multiple_variant_handling"],
        test_account_filters=tuple(TEST_ACCOUNT_FILTERS),
        cuped_days=options.get("cuped"),
        persons=persons,
    )
    return experiment, events + identifies, setup


@pytest.mark.parametrize("kind", KINDS)
def test_an_anonymous_exposure_and_an_identified_conversion_are_one_unit(kind):
    metric, options = CASES[kind]
    experiment, events, setup = identified_experiment(options)

    assert_matches_reference(experiment, metric, events, setup)


def test_counting_by_distinct_id_would_differ():
    """The sample really crosses logins: without the persons the reference gives other numbers."""
    metric, options = CASES["count"]
    experiment, events, setup = identified_experiment(options)
    by_distinct_id = Setup(**{**setup.__dict__, "persons": {}})

    with pytest.raises(AssertionError):
        assert_matches_reference(experiment, metric, events, by_distinct_id)


def test_a_person_exposed_to_two_variants_under_two_ids_is_multiple():
    experiment, events, setup = identified_experiment({})
    boundaries = day_boundaries(experiment, 8)

    per_day = daily_exposures(experiment=experiment, boundaries=boundaries)

    units = exposures(events, setup, boundaries[-1])
    exposed_persons = {setup.unit_of(event.distinct_id) for event in events if event.event == "$feature_flag_called"}
    multiple = Counter()
    for bucket in per_day:
        multiple.update({key: count for key, count in bucket.items()})
    switched = {
        person
        for person in exposed_persons
        if len(
            {
                event.properties.get("$feature_flag_response")
                for event in events
                if event.event == "$feature_flag_called"
                and setup.unit_of(event.distinct_id) == person
                and event.properties.get("$feature_flag") == FLAG_KEY
                and event.properties.get("$host") != "localhost"
                and event.timestamp >= START
            }
        )
        > 1
    }
    assert multiple[MULTIPLE_VARIANT_KEY] == len(switched) > 0
    assert multiple["control"] + multiple["test"] == len(units)
    # Among them persons seen in one variant before logging in and in the other after.
    crossing = {f"unit-{number}" for number in range(0, 120, 9) if number % 15}
    assert crossing & switched == crossing


def test_a_merge_refused_leaves_the_conversion_with_nobody():
    experiment = make_experiment(timezone="UTC", start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    start = experiment.start_date
    flag = {"$feature_flag": FLAG_KEY, "$feature_flag_response": "test"}
    ingest(
        experiment.project,
        [
            RawEvent("$identify", "user-1", start, {"$anon_distinct_id": "device-1"}),  # user-1 is identified
            RawEvent("$feature_flag_called", "anon-2", start + dt.timedelta(hours=1), flag),
            RawEvent("$identify", "user-2", start + dt.timedelta(hours=2), {"$anon_distinct_id": "anon-2"}),
            RawEvent("purchase", "user-2", start + dt.timedelta(hours=3)),
            RawEvent("$feature_flag_called", "user-1", start + dt.timedelta(hours=1), flag),
            RawEvent("$pageview", "user-3", start + dt.timedelta(hours=1)),
            RawEvent("$identify", "user-3", start + dt.timedelta(hours=2), {"$anon_distinct_id": "user-1"}),
            RawEvent("purchase", "user-3", start + dt.timedelta(hours=3)),
        ],
    )
    test_row = daily_rows(experiment, MEAN_PURCHASES, 1)[0]["test"]

    # anon-2 and user-2 are one unit with its purchase; user-1's person was identified, so the merge into user-3's
    # person was refused and user-3's purchase belongs to nobody exposed.
    assert (test_row["number_of_samples"], test_row["sum"]) == (2, 1)


def test_query_endpoint_counts_a_conversion_that_crosses_a_login(client, api_client, project):
    flag = FeatureFlagFactory(project=project, key=FLAG_KEY)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    experiment = ExperimentFactory(project=project, feature_flag=flag, start_date=start, end_date=start + DAY)
    at = (start + dt.timedelta(hours=1)).isoformat()
    flag_call = {"$feature_flag": FLAG_KEY, "$feature_flag_response": "test"}
    batches = [
        [{"event": "$feature_flag_called", "distinct_id": f"anon-{n}", "timestamp": at, "properties": flag_call}]
        for n in range(3)
    ] + [
        [
            {
                "event": "$identify",
                "distinct_id": f"user-{n}",
                "timestamp": at,
                "properties": {"$anon_distinct_id": f"anon-{n}"},
            },
            {"event": "purchase", "distinct_id": f"user-{n}", "timestamp": at},
        ]
        for n in range(2)
    ]
    for batch in batches:
        response = client.post(
            "/batch/", {"api_key": project.api_token, "batch": batch}, content_type="application/json"
        )
        assert response.status_code == 200

    response = api_client.post(
        f"/api/projects/{project.pk}/query/",
        {"query": {"kind": "ExperimentQuery", "experiment_id": experiment.pk, "metric": MEAN_PURCHASES}},
        format="json",
    )

    (test,) = response.json()["variant_results"]
    assert (test["number_of_samples"], test["sum"]) == (3, 2)


PERSON_TEST_ACCOUNTS = [
    *TEST_ACCOUNT_FILTERS,
    {"key": "email", "operator": "not_icontains", "value": "@corp.io", "type": "person"},
]


def with_person_properties(experiment, events, setup):
    """Give the persons properties (by `$set` events long before the experiment) and put a third of them in a
    static cohort; returns the setup knowing both."""
    long_before = START - dt.timedelta(days=60)
    units = sorted({setup.unit_of(event.distinct_id) for event in events})
    sets = []
    for index, unit in enumerate(units):
        properties = {
            "email": f"{unit}@{'corp.io' if index % 5 == 0 else 'mail.com'}",
            "plan": "pro" if index % 3 == 1 else "free",
        }
        sets.append(RawEvent("$set", unit, long_before, {"$set": properties}))
    ingest(experiment.project, sets)
    cohort = CohortFactory(project=experiment.project, is_static=True)
    members = {unit for index, unit in enumerate(units) if index % 3 == 0}
    persons = {unit: person_for_distinct_id(project_id=experiment.project_id, distinct_id=unit) for unit in units}
    CohortPerson.objects.bulk_create(CohortPerson(cohort=cohort, person=persons[unit]) for unit in members)
    setup = dataclasses.replace(
        setup,
        person_properties={unit: person.properties for unit, person in persons.items()},
        cohorts={cohort.pk: members},
    )
    return cohort, setup


PERSON_FILTER_CASES = {
    "person property in a mean source": lambda cohort: (
        mean(events_node("purchase", properties=[{"key": "plan", "value": "pro", "type": "person"}])),
        {},
    ),
    "cohort in a funnel step": lambda cohort: (
        funnel(
            events_node("$pageview"),
            events_node("purchase", properties=[{"key": "id", "value": cohort.pk, "type": "cohort"}]),
        ),
        {},
    ),
    "not in cohort, ratio": lambda cohort: (
        ratio(
            events_node(
                "purchase", properties=[{"key": "id", "value": cohort.pk, "type": "cohort", "operator": "not_in"}]
            ),
            events_node("$pageview"),
        ),
        {},
    ),
    "person test-account filters": lambda cohort: (
        mean(events_node("purchase")),
        {"test_accounts": PERSON_TEST_ACCOUNTS},
    ),
    "person exposure filter": lambda cohort: (
        mean(events_node("purchase")),
        {"exposure_properties": [{"key": "plan", "value": "free", "type": "person"}]},
    ),
    "cohort exposure filter, retention": lambda cohort: (
        retention(),
        {"exposure_properties": [{"key": "id", "value": cohort.pk, "type": "cohort"}]},
    ),
}


@pytest.mark.parametrize("case", PERSON_FILTER_CASES)
def test_person_and_cohort_filters_match_the_reference(case):
    experiment, events, setup = identified_experiment({})
    cohort, setup = with_person_properties(experiment, events, setup)
    metric, options = PERSON_FILTER_CASES[case](cohort)
    if "test_accounts" in options:
        experiment.project.test_account_filters = options["test_accounts"]
        experiment.project.save()
        setup = dataclasses.replace(setup, test_account_filters=tuple(options["test_accounts"]))
    if "exposure_properties" in options:
        experiment.exposure_criteria = {
            **experiment.exposure_criteria,
            "exposure_config": {
                "kind": "ExperimentEventExposureConfig",
                "event": "$feature_flag_called",
                "properties": options["exposure_properties"],
            },
        }
        experiment.save()
        setup = dataclasses.replace(setup, exposure_properties=tuple(options["exposure_properties"]))

    assert_matches_reference(experiment, metric, events, setup)


def clickhouse_person_tables(project) -> dict:
    """The current rows of ClickHouse's person tables for the project (deleted ones left out, as FINAL reads)."""
    client = clickhouse_client()
    project_id = int(project.pk)

    def rows(sql: str) -> set[tuple]:
        return {tuple(row) for row in client.rows(f"{sql} WHERE project_id = {project_id}")}

    return {
        "persons": rows(f"SELECT toString(uuid), properties FROM {client.database}.{PERSONS_TABLE}"),
        "distinct_ids": rows(f"SELECT distinct_id, toString(person_id) FROM {client.database}.{DISTINCT_IDS_TABLE}"),
        "overrides": rows(
            f"SELECT toString(old_person_id), toString(new_person_id) FROM {client.database}.{OVERRIDES_TABLE}"
        ),
    }


def django_person_tables(project) -> dict:
    """The same rows as the Django database holds them."""
    return {
        "persons": {
            (str(person.uuid), json.dumps(person.properties, separators=(",", ":")))
            for person in Person.objects.filter(project=project)
        },
        "distinct_ids": set(
            PersonDistinctId.objects.filter(project=project).values_list("distinct_id", "person__uuid")
        ),
        "overrides": set(PersonOverride.objects.filter(project=project).values_list("old_person_id", "new_person_id")),
    }


def as_text(tables: dict) -> dict:
    return {name: {tuple(str(value) for value in row) for row in rows} for name, rows in tables.items()}


@pytest.mark.parametrize("delete_events", [False, True])
def test_deleting_a_merged_person_changes_the_results_alike_on_every_store(make_client, event_store, delete_events):
    """A person with an anonymous id merged into it (an override) is deleted through the API: without its events,
    the anonymous events go back to their own person (the override is gone); with them, both ids' events go. The
    results follow the reference, and ClickHouse's person tables hold what the Django database holds."""
    metric, _ = CASES["count"]
    experiment, events, setup = identified_experiment({})
    project = experiment.project
    override = PersonOverride.objects.filter(project=project).order_by("id").first()
    person = Person.objects.get(project=project, uuid=override.new_person_id)
    distinct_ids = set(person.distinct_ids.values_list("distinct_id", flat=True))
    assert len(distinct_ids) == 2 and not distinct_ids - set(setup.persons) - set(setup.persons.values())

    query = "?delete_events=true" if delete_events else ""
    response = make_client(member_of(project)).delete(f"/api/projects/{project.pk}/persons/{person.uuid}/{query}")

    assert response.status_code == 202
    persons = {key: value for key, value in setup.persons.items() if key not in distinct_ids}
    if delete_events:
        events = [event for event in events if event.distinct_id not in distinct_ids]
    assert_matches_reference(experiment, metric, events, dataclasses.replace(setup, persons=persons))
    if event_store == "clickhouse":
        assert as_text(clickhouse_person_tables(project)) == as_text(django_person_tables(project))
        rows = stored_events(project)
        assert any(row["distinct_id"] in distinct_ids for row in rows) is not delete_events

    # The id sends again: a new person with the same uuid, in both databases.
    identified = setup.persons[next(iter(distinct_ids & set(setup.persons)))]
    ingest(project, [RawEvent("$pageview", identified, START + 30 * DAY, {"$set": {"plan": "back"}})])
    assert Person.objects.get(project=project, uuid=person.uuid).properties["plan"] == "back"
    if event_store == "clickhouse":
        assert as_text(clickhouse_person_tables(project)) == as_text(django_person_tables(project))
