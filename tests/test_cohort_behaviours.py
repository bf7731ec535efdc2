"""Behavioural cohort filters (persons/behaviours.py): every kind PostHog defines, computed on PostgreSQL, on
ClickHouse (chDB) and on SQLite against memberships worked out by hand from the events below (negation included),
their validation on save (a 400 naming the leaf and the field), and their refusal in feature flags.

The calculation runs as of NOW; each person's events are listed with their offsets from it. dan's early events
were sent under `anon-dan` and merged into dan afterwards, so they are resolved through the overrides."""

import datetime as dt
import uuid

import pytest

from events.services import events_ingest
from flags import messages as messages_flags
from flags.models import Cohort
from persons import messages
from persons.behaviours import BEHAVIOURS
from persons.models import Person, PersonOverride
from persons.services.cohorts import cohort_members
from tests.helpers import validation_error

NOW = dt.datetime(2025, 6, 30, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
# (distinct id, event, offset from NOW, properties)
EVENTS = [
    ("ada", "buy", -1 * DAY, {"amount": 3}),
    ("ada", "buy", -36 * HOUR, {"amount": 10}),
    ("ada", "buy", -40 * DAY, {"amount": 1}),
    ("ada", "pay", -3 * DAY, {}),
    ("ada", "view", -2 * DAY, {}),
    ("bob", "buy", -20 * DAY, {"amount": 5}),
    ("bob", "view", -25 * DAY, {"src": "ad"}),
    ("bob", "pay", -24 * DAY, {}),
    ("cyd", "buy", -5 * HOUR, {"amount": 1}),
    ("cyd", "view", -6 * HOUR, {"src": "mail"}),
    ("cyd", "pay", -5 * HOUR, {}),
    ("anon-dan", "buy", -10 * DAY, {"amount": 1}),
    ("anon-dan", "buy", -9.25 * DAY, {"amount": 1}),
    ("anon-dan", "view", -9 * DAY, {}),
    ("dan", "buy", -1 * DAY, {"amount": 1}),
    ("dan", "pay", -8.5 * DAY, {}),
    ("eve", "view", -1 * DAY, {}),
    ("eve", "pay", -1 * DAY, {}),  # at the same instant as the view: not after it
    ("fay", "buy", HOUR, {"amount": 1}),  # after NOW: not seen
    ("fay", "buy", -60 * DAY, {"amount": 1}),
    ("fay", "view", -60 * DAY, {}),
    ("fay", "pay", -59 * DAY, {}),
    ("gus", "buy", -29 * DAY, {"amount": 1}),
    ("gus", "buy", -15 * DAY, {"amount": 1}),
    ("gus", "buy", -8 * DAY, {"amount": 1}),
    ("gus", "buy", -1 * DAY, {"amount": 9}),
    ("gus", "view", -10 * DAY, {}),
    ("gus", "pay", -7 * DAY, {}),
]
EVERYONE = frozenset({"ada", "bob", "cyd", "dan", "eve", "fay", "gus"})


def leaf(value: str, key: str = "buy", **fields) -> dict:
    return {"type": "behavioral", "value": value, "key": key, "event_type": "events", **fields}


def days(count: int) -> dict:
    return {"time_value": count, "time_interval": "day"}


def seq_days(count: int) -> dict:
    return {"seq_time_value": count, "seq_time_interval": "day"}


def tree(kind: str, *values: dict) -> dict:
    return {"properties": {"type": kind, "values": list(values)}}


AMOUNT_5 = [{"key": "amount", "value": 5, "operator": "gte", "type": "event"}]
CASES = {
    "performed in 7 days": (leaf("performed_event", **days(7)), {"ada", "cyd", "dan", "gus"}),
    "not performed in 7 days": (leaf("performed_event", negation=True, **days(7)), {"bob", "eve", "fay"}),
    "performed with a filter": (leaf("performed_event", event_filters=AMOUNT_5, **days(30)), {"ada", "bob", "gus"}),
    "performed since an absolute date": (
        leaf("performed_event", explicit_datetime=(NOW - 3 * DAY).isoformat()),
        {"ada", "cyd", "dan", "gus"},
    ),
    "performed since a relative date": (
        leaf("performed_event", explicit_datetime="-21d", **days(1)),  # explicit_datetime wins
        {"ada", "bob", "cyd", "dan", "gus"},
    ),
    "at least 3 times": (
        leaf("performed_event_multiple", operator="gte", operator_value=3, **days(30)),
        {"dan", "gus"},
    ),
    "not at least 3 times": (
        leaf("performed_event_multiple", operator="gte", operator_value=3, negation=True, **days(30)),
        {"ada", "bob", "cyd", "eve", "fay"},
    ),
    # Persons without any such event (eve, fay) are not "at most once".
    "at most once": (leaf("performed_event_multiple", operator="lte", operator_value=1, **days(30)), {"bob", "cyd"}),
    "exactly twice": (leaf("performed_event_multiple", operator="eq", operator_value=2, **days(30)), {"ada"}),
    "exactly twice (exact)": (
        leaf("performed_event_multiple", operator="exact", operator_value=2, **days(30)),
        {"ada"},
    ),
    "exactly once (no operator)": (leaf("performed_event_multiple", operator_value=1, **days(30)), {"bob", "cyd"}),
    "more than 3 times": (leaf("performed_event_multiple", operator="gt", operator_value=3, **days(30)), {"gus"}),
    "fewer than 2 times": (
        leaf("performed_event_multiple", operator="lt", operator_value=2, **days(30)),
        {"bob", "cyd"},
    ),
    "first time in 7 days": (leaf("performed_event_first_time", **days(7)), {"cyd"}),
    # dan's first purchase was under anon-dan, 10 days ago.
    "first time in 15 days": (leaf("performed_event_first_time", **days(15)), {"cyd", "dan"}),
    # gus's first purchase (29 days ago, amount 1) does not match; his later one does not count.
    "first time with a filter": (
        leaf("performed_event_first_time", event_filters=AMOUNT_5, **days(30)),
        {"bob"},
    ),
    "not first time in 15 days": (
        leaf("performed_event_first_time", negation=True, **days(15)),
        {"ada", "bob", "eve", "fay", "gus"},
    ),
    "stopped": (leaf("stopped_performing_event", **days(30), **seq_days(7)), {"bob"}),
    "not stopped": (
        leaf("stopped_performing_event", negation=True, **days(30), **seq_days(7)),
        {"ada", "cyd", "dan", "eve", "fay", "gus"},
    ),
    # fay bought long ago and "again" only after NOW.
    "restarted": (leaf("restarted_performing_event", **days(7), **seq_days(2)), {"ada", "dan", "gus"}),
    "regularly, at least once a week in 3 of 4 weeks": (
        leaf("performed_event_regularly", operator="gte", operator_value=1, min_periods=3, total_periods=4, **days(7)),
        {"gus"},
    ),
    "regularly, exactly twice in a week in 1 of 4 weeks": (
        leaf("performed_event_regularly", operator="eq", operator_value=2, min_periods=1, total_periods=4, **days(7)),
        {"ada", "dan"},
    ),
    # A week without the event counts as "at most once" for those who did it in the 4 weeks.
    "regularly, at most once a week in 4 of 4 weeks": (
        leaf("performed_event_regularly", operator="lte", operator_value=1, min_periods=4, total_periods=4, **days(7)),
        {"bob", "cyd", "gus"},
    ),
    "view then pay within 2 days": (
        leaf(
            "performed_event_sequence", key="view", seq_event="pay", seq_event_type="events", **days(30), **seq_days(2)
        ),
        {"bob", "cyd", "dan"},
    ),
    "view from an ad then pay": (
        leaf(
            "performed_event_sequence",
            key="view",
            seq_event="pay",
            event_filters=[{"key": "src", "value": "ad", "type": "event"}],
            **days(30),
            **seq_days(2),
        ),
        {"bob"},
    ),
    "not view then pay": (
        leaf("performed_event_sequence", key="view", seq_event="pay", negation=True, **days(30), **seq_days(2)),
        {"ada", "eve", "fay", "gus"},
    ),
    "buy twice within a day": (
        leaf("performed_event_sequence", seq_event="buy", **days(30), **seq_days(1)),
        {"ada", "dan"},
    ),
    "buy then buy again within 12 hours": (
        leaf("performed_event_sequence", seq_event="buy", **days(30), seq_time_value=12, seq_time_interval="hour"),
        {"ada"},
    ),
}
TREES = {
    "at least 3 times and not first time in 15 days": (
        tree(
            "AND",
            leaf("performed_event_multiple", operator="gte", operator_value=3, **days(30)),
            leaf("performed_event_first_time", negation=True, **days(15)),
        ),
        {"gus"},
    ),
    "stopped or view then pay": (
        tree(
            "OR",
            tree("AND", leaf("stopped_performing_event", **days(30), **seq_days(7)))["properties"],
            leaf("performed_event_sequence", key="view", seq_event="pay", **days(30), **seq_days(2)),
        ),
        {"bob", "cyd", "dan"},
    ),
}


def expected_memberships() -> dict[str, list[str]]:
    return {name: sorted(members) for name, (_, members) in {**CASES, **TREES}.items()}


def load_events(project) -> None:
    """The events, then (in a later batch) dan's login, so his anonymous events need the overrides."""
    batch = [
        {
            "uuid": str(uuid.uuid4()),
            "event": event,
            "distinct_id": distinct_id,
            "timestamp": (NOW + offset).isoformat(),
            "properties": properties,
        }
        for distinct_id, event, offset, properties in EVENTS
    ]
    assert not events_ingest(project=project, events=batch).rejected
    login = {
        "uuid": str(uuid.uuid4()),
        "event": "$identify",
        "distinct_id": "dan",
        "timestamp": (NOW - 30 * DAY).isoformat(),
        "properties": {"$anon_distinct_id": "anon-dan"},
    }
    assert not events_ingest(project=project, events=[login]).rejected


def memberships(project) -> dict[str, list[str]]:
    """Each case's members as of NOW, by the name of each person (its distinct id that is not `anon-…`)."""
    names = {
        person.pk: next(d.distinct_id for d in person.distinct_ids.all() if not d.distinct_id.startswith("anon-"))
        for person in Person.objects.filter(project=project).prefetch_related("distinct_ids")
    }
    assert set(names.values()) == EVERYONE
    result = {}
    for name, (filters, _) in {**CASES, **TREES}.items():
        filters = filters if "properties" in filters else tree("AND", filters)
        cohort = Cohort.objects.create(project=project, name=name, filters=filters)
        result[name] = sorted(names[pk] for pk in cohort_members(cohort, now=NOW))
    return result


@pytest.mark.django_db
@pytest.mark.usefixtures("event_store")
def test_memberships_on_every_store(project):
    load_events(project)
    assert PersonOverride.objects.filter(project=project).count() == 1  # anon-dan's events carry his old uuid

    assert memberships(project) == expected_memberships()


def test_every_kind_is_computed():
    assert {leaf["value"] for leaf, _ in CASES.values()} == set(BEHAVIOURS)


# --- validation on save ---------------------------------------------------------------------------------------

PATH = "filters.properties.values[0]"


def invalid(problem: str, path: str = PATH) -> dict:
    return validation_error(messages.BEHAVIOUR_INVALID.format(path=path, problem=problem), "filters")


BAD_LEAVES = [
    (leaf("performed_events", **days(7)), messages.BEHAVIOUR_VALUE_INVALID.format(kinds=", ".join(BEHAVIOURS))),
    (
        {**leaf("performed_event", **days(7)), "key": ""},
        messages.BEHAVIOUR_EVENT_INVALID.format(field="key", limit=400),
    ),
    (
        {**leaf("performed_event", **days(7)), "key": 7},
        messages.BEHAVIOUR_EVENT_INVALID.format(field="key", limit=400),
    ),
    (leaf("performed_event", event_type="actions", **days(7)), messages.BEHAVIOUR_ACTIONS.format(field="event_type")),
    (
        leaf("performed_event", event_type="clicks", **days(7)),
        messages.BEHAVIOUR_EVENT_TYPE_INVALID.format(field="event_type"),
    ),
    (leaf("performed_event"), messages.BEHAVIOUR_POSITIVE_INTEGER.format(field="time_value")),
    (
        leaf("performed_event", time_value=0, time_interval="day"),
        messages.BEHAVIOUR_POSITIVE_INTEGER.format(field="time_value"),
    ),
    (
        leaf("performed_event", time_value="7", time_interval="day"),
        messages.BEHAVIOUR_POSITIVE_INTEGER.format(field="time_value"),
    ),
    (
        leaf("performed_event", time_value=True, time_interval="day"),
        messages.BEHAVIOUR_POSITIVE_INTEGER.format(field="time_value"),
    ),
    (
        leaf("performed_event", time_value=7, time_interval="fortnight"),
        messages.BEHAVIOUR_INTERVAL_INVALID.format(field="time_interval", units="minute, hour, day, week, month, year"),
    ),
    (
        leaf("performed_event", time_value=11, time_interval="year"),
        messages.BEHAVIOUR_WINDOW_TOO_LONG.format(field="time_value", years=10),
    ),
    (
        leaf("performed_event", explicit_datetime="last tuesday"),
        messages.BEHAVIOUR_EXPLICIT_DATETIME_INVALID,
    ),
    (leaf("performed_event", explicit_datetime=20250101), messages.BEHAVIOUR_EXPLICIT_DATETIME_INVALID),
    (
        leaf("performed_event", explicit_datetime="-9999d"),
        messages.BEHAVIOUR_WINDOW_TOO_LONG.format(field="explicit_datetime", years=10),
    ),
    (leaf("performed_event", negation="yes", **days(7)), messages.BEHAVIOUR_NEGATION_INVALID),
    (
        leaf("performed_event", time_vaule=7, **days(7)),
        messages.BEHAVIOUR_UNKNOWN_KEYS.format(keys="time_vaule"),
    ),
    (leaf("performed_event", event_filters={"key": "a"}, **days(7)), messages.BEHAVIOUR_FILTERS_NOT_LIST),
    (
        leaf("performed_event", event_filters=[{"key": "plan", "value": "pro", "type": "person"}], **days(7)),
        messages.BEHAVIOUR_FILTER_TYPE.format(type="person"),
    ),
    (
        leaf("performed_event", event_filters=[{"key": "a", "value": 1, "operator": "near"}], **days(7)),
        messages.BEHAVIOUR_FILTER_OPERATOR.format(
            operator="near",
            operators="exact, is_not, icontains, not_icontains, regex, not_regex, gt, gte, lt, lte, is_set, is_not_set",
        ),
    ),
    (
        leaf("performed_event", event_filters=[{"key": "a"}], **days(7)),
        "property filter 'a' needs a value.",
    ),
    (
        leaf("performed_event_multiple", operator="gte", **days(7)),
        messages.BEHAVIOUR_POSITIVE_INTEGER.format(field="operator_value"),
    ),
    (
        leaf("performed_event_multiple", operator="between", operator_value=2, **days(7)),
        messages.BEHAVIOUR_OPERATOR_INVALID.format(operators="gte, lte, gt, lt, eq, exact"),
    ),
    (
        leaf("performed_event_sequence", **days(7), **seq_days(1)),
        messages.BEHAVIOUR_EVENT_INVALID.format(field="seq_event", limit=400),
    ),
    (
        leaf("performed_event_sequence", seq_event="pay", seq_event_type="actions", **days(7), **seq_days(1)),
        messages.BEHAVIOUR_ACTIONS.format(field="seq_event_type"),
    ),
    (
        leaf("performed_event_sequence", seq_event="pay", **days(7)),
        messages.BEHAVIOUR_POSITIVE_INTEGER.format(field="seq_time_value"),
    ),
    (
        leaf("performed_event_sequence", seq_event="pay", seq_time_value=1, seq_time_interval="days", **days(7)),
        messages.BEHAVIOUR_INTERVAL_INVALID.format(
            field="seq_time_interval", units="minute, hour, day, week, month, year"
        ),
    ),
    (
        leaf("stopped_performing_event", **days(7), **seq_days(7)),
        messages.BEHAVIOUR_SEQ_WINDOW_NOT_SHORTER,
    ),
    (
        leaf("restarted_performing_event", **days(7)),
        messages.BEHAVIOUR_POSITIVE_INTEGER.format(field="seq_time_value"),
    ),
    (
        leaf("stopped_performing_event", explicit_datetime="-30d", **days(30), **seq_days(7)),
        messages.BEHAVIOUR_EXPLICIT_DATETIME_UNUSED.format(kind="stopped_performing_event"),
    ),
    (
        leaf("performed_event_regularly", operator="gte", operator_value=1, total_periods=4, **days(7)),
        messages.BEHAVIOUR_POSITIVE_INTEGER.format(field="min_periods"),
    ),
    (
        leaf("performed_event_regularly", operator="gte", operator_value=1, min_periods=5, total_periods=4, **days(7)),
        messages.BEHAVIOUR_MIN_PERIODS_TOO_MANY,
    ),
    (
        leaf(
            "performed_event_regularly", operator="gte", operator_value=1, min_periods=1, total_periods=101, **days(1)
        ),
        messages.BEHAVIOUR_INTEGER_RANGE.format(field="total_periods", maximum=100),
    ),
    (
        leaf(
            "performed_event_regularly", operator="gte", operator_value=1, min_periods=1, total_periods=100, **days(60)
        ),
        messages.BEHAVIOUR_WINDOW_TOO_LONG.format(field="total_periods", years=10),
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("bad_leaf", "problem"), BAD_LEAVES)
def test_a_bad_behavioural_leaf_is_a_400_naming_the_field(api_client, project, bad_leaf, problem):
    response = api_client.post(
        f"/api/projects/{project.pk}/cohorts/", {"name": "c", "filters": tree("AND", bad_leaf)}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid(problem)
    assert not Cohort.objects.exists()


@pytest.mark.django_db
def test_the_path_names_a_nested_leaf_and_patch_is_checked_too(api_client, project):
    cohort = Cohort.objects.create(project=project, name="c", filters=tree("AND"))
    bad = tree(
        "OR", tree("AND", leaf("performed_event", **days(7)))["properties"], tree("AND", leaf("x"))["properties"]
    )

    response = api_client.patch(f"/api/projects/{project.pk}/cohorts/{cohort.pk}/", {"filters": bad}, format="json")

    assert response.status_code == 400
    kinds = ", ".join(BEHAVIOURS)
    assert response.json() == invalid(
        messages.BEHAVIOUR_VALUE_INVALID.format(kinds=kinds), "filters.properties.values[1].values[0]"
    )
    cohort.refresh_from_db()
    assert cohort.filters == tree("AND")


@pytest.mark.django_db
@pytest.mark.parametrize("name", [name for name in CASES if "not" not in name])
def test_every_valid_case_saves_and_no_flag_can_use_it(api_client, project, name):
    filters = tree("AND", CASES[name][0])
    response = api_client.post(
        f"/api/projects/{project.pk}/cohorts/", {"name": name, "filters": filters}, format="json"
    )
    assert response.status_code == 201, response.json()
    wrapper = Cohort.objects.create(
        project=project,
        name="wrapper",
        filters=tree("AND", {"key": "id", "value": response.json()["id"], "type": "cohort"}),
    )

    for cohort_id, cohort_name in ((response.json()["id"], name), (wrapper.pk, "wrapper")):
        flag = api_client.post(
            f"/api/projects/{project.pk}/feature_flags/",
            {
                "key": f"flag-{cohort_id}",
                "filters": {
                    "groups": [
                        {"properties": [{"key": "id", "value": cohort_id, "type": "cohort"}], "rollout_percentage": 100}
                    ]
                },
            },
            format="json",
        )
        assert flag.status_code == 400
        assert flag.json() == {
            "type": "validation_error",
            "code": "behavioral_cohort_found",
            "detail": f"Cohort '{cohort_name}' with filters on events cannot be used in feature flags.",
            "attr": "filters",
        }


@pytest.mark.django_db
def test_a_cohort_an_active_flag_uses_cannot_gain_event_filters(api_client, project):
    plan = {"key": "plan", "value": "pro", "type": "person", "operator": "exact"}
    inner = Cohort.objects.create(project=project, name="inner", filters=tree("AND", plan))
    outer = Cohort.objects.create(
        project=project, name="outer", filters=tree("AND", {"key": "id", "value": inner.pk, "type": "cohort"})
    )
    unused = Cohort.objects.create(project=project, name="unused", filters=tree("AND", plan))
    flag = api_client.post(
        f"/api/projects/{project.pk}/feature_flags/",
        {
            "key": "uses-outer",
            "filters": {
                "groups": [
                    {"properties": [{"key": "id", "value": outer.pk, "type": "cohort"}], "rollout_percentage": 100}
                ]
            },
        },
        format="json",
    )
    assert flag.status_code == 201, flag.json()
    behavioural = tree("AND", plan, leaf("performed_event", **days(7)))

    def patch(cohort):
        return api_client.patch(
            f"/api/projects/{project.pk}/cohorts/{cohort.pk}/", {"filters": behavioural}, format="json"
        )

    for cohort in (outer, inner):  # used directly, and through the cohort that references it
        response = patch(cohort)
        assert response.status_code == 400
        assert response.json() == {
            "type": "validation_error",
            "code": "behavioral_cohort_found",
            "detail": messages_flags.BEHAVIORAL_FILTERS_IN_FLAG_COHORT,
            "attr": "filters",
        }
        cohort.refresh_from_db()
        assert "behavioral" not in str(cohort.filters)
    assert patch(unused).status_code == 200
    api_client.patch(f"/api/projects/{project.pk}/feature_flags/{flag.json()['id']}/", {"active": False}, format="json")
    assert patch(inner).status_code == 200  # an inactive flag is not evaluated
