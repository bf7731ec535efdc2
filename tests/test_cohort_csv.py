"""Static cohorts from a CSV upload (multipart `csv` on cohort create and update), read as PostHog reads it: one
column of distinct ids (first row included), person uuids or emails under their header, or the id column of a
wider file; unknown ids ignored. The file is read in the request (a bad one is a 400 on `csv` and writes nothing)
and its persons are added by a task once the request commits. The OpenAPI schema documents the multipart body."""

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from events.services import events_ingest
from experiments_api.messages import FORM_TOO_LARGE
from flags.models import Cohort
from persons import messages
from persons.cohort_csv import DISTINCT_ID, MAX_CSV_BYTES
from persons.models import CohortPerson
from persons.selectors import person_for_distinct_id
from persons.tasks import add_static_cohort_persons
from tests.factories import CohortFactory
from tests.helpers import run_on_sqlite, validation_error
from tests.schema_validation import served_schema

pytestmark = pytest.mark.django_db


def load_people(project) -> None:
    events = [
        {"event": "$set", "distinct_id": "ada", "properties": {"$set": {"email": "ada@example.com"}}},
        {"event": "$set", "distinct_id": "bob", "properties": {"$set": {"email": "bob@example.com"}}},
        {"event": "$pageview", "distinct_id": "anon-cyd"},
        {"event": "$pageview", "distinct_id": "cyd"},
    ]
    login = {"event": "$identify", "distinct_id": "cyd", "properties": {"$anon_distinct_id": "anon-cyd"}}
    for batch in (events, [login]):
        result = events_ingest(
            project=project, events=[{"uuid": str(uuid.uuid4()), "properties": {}, **event} for event in batch]
        )
        assert not result.rejected


@pytest.fixture
def people(project):
    load_people(project)


def url(project, cohort=None) -> str:
    return f"/api/projects/{project.pk}/cohorts/" + (f"{cohort.pk}/" if cohort else "")


def upload(content: bytes, name: str = "people.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what a request queues once it commits (the persons task), as the server does."""

    def run(request):
        with django_capture_on_commit_callbacks(execute=True):
            return request()

    return run


@pytest.fixture
def create(api_client, project, committed):
    def post(content: bytes, **fields):
        body = {"name": "Uploaded", "is_static": "true", "csv": upload(content), **fields}
        return committed(lambda: api_client.post(url(project), body, format="multipart"))

    return post


def members(cohort) -> set[str]:
    """Each member by the distinct id it was first seen with (cyd's person was created from `cyd`)."""
    return set(
        CohortPerson.objects.filter(cohort=cohort, person__distinct_ids__version=0).values_list(
            "person__distinct_ids__distinct_id", flat=True
        )
    )


def uuid_of(project, distinct_id: str) -> str:
    return str(person_for_distinct_id(project_id=project.pk, distinct_id=distinct_id).uuid)


GOOD_FILES = [
    # One column without a header: every row is a distinct id; a merged id is its current person's.
    pytest.param(b"ada\nanon-cyd\nnobody\n", {"ada", "cyd"}, id="distinct ids"),
    pytest.param(b"\xef\xbb\xbfbob\r\n\r\n  ada  \r\n", {"ada", "bob"}, id="BOM, CRLF, blank rows and spaces"),
    pytest.param(b"email\nada@example.com\nnobody@example.com\n", {"ada"}, id="emails"),
    pytest.param(b"E-mail\nbob@example.com\n", {"bob"}, id="e-mail header"),
    pytest.param(b"name,email,distinct_id\nAda,bob@example.com,ada\nshort\n", {"ada"}, id="distinct_id column"),
    pytest.param(b"name,Email\nAda,ada@example.com\n", {"ada"}, id="email column"),
]


@pytest.mark.parametrize(("content", "expected"), GOOD_FILES)
def test_a_static_cohort_from_a_csv(api_client, project, people, create, content, expected):
    response = create(content)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["is_static"], body["is_calculating"], body["count"]) == (True, True, None)  # the task adds them
    assert "csv" not in body
    cohort = Cohort.objects.get(pk=body["id"])
    assert members(cohort) == expected
    after = api_client.get(url(project, cohort)).json()
    assert (after["is_calculating"], after["count"], after["errors_calculating"]) == (False, len(expected), 0)
    assert after["last_calculation"] is not None


def test_person_ids_win_over_other_columns_and_unknown_ones_are_ignored(project, people, create):
    single = f"person_id\n{uuid_of(project, 'ada')}\n{uuid.uuid4()}\nnot-a-uuid\n".encode()
    wide = f"email,Person .id\nada@example.com,{uuid_of(project, 'bob')}\n".encode()

    for content, expected in ((single, {"ada"}), (wide, {"bob"})):
        response = create(content)
        assert response.status_code == 201, response.json()
        assert members(Cohort.objects.get(pk=response.json()["id"])) == expected


def test_a_csv_on_update_adds_to_the_members(api_client, project, people, committed):
    cohort = CohortFactory(project=project, is_static=True)
    CohortPerson.objects.create(cohort=cohort, person=person_for_distinct_id(project_id=project.pk, distinct_id="ada"))
    body = {"csv": upload(b"bob\nada\n"), "description": "two"}

    response = committed(lambda: api_client.patch(url(project, cohort), body, format="multipart"))

    assert response.status_code == 200, response.json()
    assert (response.json()["is_calculating"], response.json()["description"]) == (True, "two")
    assert members(cohort) == {"ada", "bob"}
    cohort.refresh_from_db()
    assert (cohort.count, cohort.is_calculating) == (2, False)


def test_the_persons_task_is_idempotent_and_leaves_a_cohort_made_dynamic_alone(project, people):
    cohort = CohortFactory(project=project, is_static=True)

    for _ in range(2):  # a redelivered message adds the same persons
        add_static_cohort_persons.delay(cohort.pk, DISTINCT_ID, ["ada", "bob", "nobody"])

    cohort.refresh_from_db()
    assert (members(cohort), cohort.count) == ({"ada", "bob"}, 2)
    Cohort.objects.filter(pk=cohort.pk).update(is_static=False)
    add_static_cohort_persons.delay(cohort.pk, DISTINCT_ID, ["cyd"])
    assert members(cohort) == {"ada", "bob"}


def test_the_other_fields_come_as_form_fields(project, people, create):
    response = create(b"ada\n", description="from a file", filters='{"properties": {"type": "AND", "values": []}}')

    assert response.status_code == 201, response.json()
    assert (response.json()["description"], response.json()["filters"]) == (
        "from a file",
        {"properties": {"type": "AND", "values": []}},
    )


BAD_FILES = [
    pytest.param(b"", messages.CSV_EMPTY, id="empty"),
    pytest.param(b"\n \n,,\n", messages.CSV_EMPTY, id="blank rows only"),
    pytest.param("caf\xe9\n".encode("latin-1"), messages.CSV_ENCODING_ERROR, id="not UTF-8"),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", messages.CSV_ENCODING_ERROR, id="binary"),
    pytest.param(b"ada\x00\nbob\n", messages.CSV_FORMAT_ERROR, id="NUL"),
    pytest.param(b'"' + b"a" * 200_000 + b'"\n', messages.CSV_FORMAT_ERROR, id="a field over the csv limit"),
    pytest.param(b"email\n", messages.CSV_NO_VALID_IDS, id="header only"),
    pytest.param(b"name,distinct_id\nAda,\nBob\n", messages.CSV_NO_VALID_IDS, id="empty id column"),
    pytest.param(
        b"name,plan\nAda,pro\n", messages.CSV_MISSING_ID_COLUMN.format(columns="name, plan"), id="no id column"
    ),
    pytest.param(
        b"ada\n" * (MAX_CSV_BYTES // 4 + 1),
        messages.CSV_TOO_LARGE.format(megabytes=MAX_CSV_BYTES // 2**20),
        id="too large",
    ),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
def test_a_bad_csv_is_a_400_and_writes_nothing(project, people, create, content, message):
    response = create(content)

    assert response.status_code == 400
    assert response.json() == validation_error(message, "csv")
    assert not Cohort.objects.exists()


@pytest.mark.parametrize(("content", "message"), BAD_FILES[:3])
def test_a_bad_csv_on_update_changes_nothing(api_client, project, people, content, message):
    cohort = CohortFactory(project=project, is_static=True, name="Before")

    response = api_client.patch(url(project, cohort), {"csv": upload(content), "name": "After"}, format="multipart")

    assert response.json() == validation_error(message, "csv")
    cohort.refresh_from_db()
    assert (cohort.name, cohort.count, CohortPerson.objects.filter(cohort=cohort).exists()) == ("Before", None, False)


def test_a_csv_needs_a_static_cohort_and_a_file(api_client, project, people):
    dynamic = api_client.post(url(project), {"name": "Dynamic", "csv": upload(b"ada\n")}, format="multipart")
    made_dynamic = api_client.patch(
        url(project, CohortFactory(project=project, is_static=True)),
        {"is_static": "false", "csv": upload(b"ada\n")},
        format="multipart",
    )
    not_a_file = api_client.post(url(project), {"name": "JSON", "is_static": True, "csv": "ada\nbob"}, format="json")

    assert dynamic.json() == validation_error(messages.CSV_NOT_STATIC, "csv")
    assert made_dynamic.json() == validation_error(messages.CSV_NOT_STATIC, "csv")
    assert not_a_file.json() == validation_error(
        "The submitted data was not a file. Check the encoding type on the form.", "csv"
    )
    assert Cohort.objects.count() == 1 and Cohort.objects.get().is_static


def test_the_schema_documents_the_multipart_upload():
    operations = served_schema()["paths"]["/api/projects/{project_id}/cohorts/"]["post"]
    content = operations["requestBody"]["content"]

    assert set(content) == {"application/json", "multipart/form-data"}
    components = served_schema()["components"]["schemas"]
    multipart = components[content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]
    json_body = components[content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert multipart["properties"]["csv"]["format"] == "binary"
    assert "csv" not in json_body["properties"]
    assert set(multipart["properties"]) - {"csv"} == set(json_body["properties"])
    for method in ("put", "patch"):
        detail = served_schema()["paths"]["/api/projects/{project_id}/cohorts/{id}/"][method]
        assert set(detail["requestBody"]["content"]) == {"application/json", "multipart/form-data"}


def test_a_multipart_body_with_too_many_fields_is_a_400(api_client, project):
    fields = {"name": "Many", "is_static": "true", "_create_static_person_ids": [str(uuid.uuid4())] * 1001}

    response = api_client.post(url(project), fields, format="multipart")

    assert response.status_code == 400
    assert response.json() == {
        "type": "invalid_request",
        "code": "parse_error",
        "detail": FORM_TOO_LARGE,
        "attr": None,
    }
    assert not Cohort.objects.exists()


SQLITE_SCRIPT = """
import json, sys, uuid
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from flags.models import Cohort
from persons.services.cohorts import static_cohort_persons_add_from_csv
from tests.factories import ProjectFactory
from tests.test_cohort_csv import load_people, members, uuid_of
project = ProjectFactory()
load_people(project)
uploads = {
    "distinct_id": ["ada", "anon-cyd", "nobody"],
    "email": ["bob@example.com", "nobody@example.com"],
    "person_id": [uuid_of(project, "ada"), str(uuid.uuid4()), "not-a-uuid"],
}
result = {}
for id_type, ids in uploads.items():
    cohort = Cohort.objects.create(project=project, name=id_type, is_static=True)
    static_cohort_persons_add_from_csv(cohort_id=cohort.pk, id_type=id_type, ids=ids)
    cohort.refresh_from_db()
    result[id_type] = [sorted(members(cohort)), cohort.count]
print(json.dumps(result))
"""


def test_the_persons_of_an_upload_are_added_on_sqlite_too(tmp_path):
    assert run_on_sqlite(SQLITE_SCRIPT, None, tmp_path) == {
        "distinct_id": [["ada", "cyd"], 2],
        "email": [["bob"], 1],
        "person_id": [["ada"], 1],
    }
