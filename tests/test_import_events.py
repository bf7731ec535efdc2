"""`manage.py import_events`: JSON Lines and CSV files, batches, bad lines reported and skipped, re-imports deduplicated."""

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command

from events import messages
from events.models import Event, EventDefinition
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(db):
    """A project that has seen no event yet, so event definitions start empty."""
    return ProjectFactory(seen_events=[])


def run_import(project, path, *args):
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("import_events", str(path), "--project", str(project.pk), *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def json_line(**event) -> str:
    return json.dumps(event) + "\n"


@pytest.fixture
def jsonl_file(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(
        json_line(event="$pageview", distinct_id="u1", timestamp="2025-05-01T10:00:00Z", properties={"a": 1})
        + "{not json\n"
        + json_line(event="purchase", timestamp="2025-05-02T10:00:00Z", properties={"amount": 5})
        + "\n"
        + json_line(event="purchase", distinct_id="u2", timestamp="2025-05-03T10:00:00Z", properties={"amount": 7.5})
        + json_line(event="purchase", distinct_id="u3", properties=[1])
        + json_line(event="$pageview", distinct_id="u3", timestamp="2099-01-01T00:00:00Z")
        + json_line(
            event="$pageview",
            distinct_id="u4",
            timestamp="2025-06-01T00:00:00Z",
            uuid="0190c1f4-0000-7000-8000-000000000001",
        )
    )
    return path


def test_jsonl_import_stores_good_lines_and_reports_bad_ones_by_number(project, jsonl_file):
    stdout, stderr = run_import(project, jsonl_file)

    rows = Event.objects.filter(project=project).order_by("timestamp")
    assert [(row.event, row.distinct_id, row.properties) for row in rows] == [
        ("$pageview", "u1", {"a": 1}),
        ("purchase", "u2", {"amount": 7.5}),
        ("$pageview", "u4", {}),
    ]
    assert rows[0].timestamp == dt.datetime(2025, 5, 1, 10, tzinfo=dt.UTC)
    assert str(rows[2].uuid) == "0190c1f4-0000-7000-8000-000000000001"
    for line in (
        f"line 2: {messages.LINE_NOT_JSON}",
        f"line 3: {messages.DISTINCT_ID_MISSING}",
        f"line 6: {messages.PROPERTIES_NOT_OBJECT}",
        f"line 7: {messages.TIMESTAMP_IN_FUTURE}",
    ):
        assert line in stderr
    assert "100.0%" in stderr
    assert stdout.strip() == f"Imported 3 events into project {project.pk}; 0 already stored, 4 bad lines skipped."
    assert set(EventDefinition.objects.filter(project=project).values_list("name", flat=True)) == {
        "$pageview",
        "purchase",
    }


def test_importing_the_same_file_again_stores_nothing_new(project, jsonl_file):
    run_import(project, jsonl_file)
    stdout, _ = run_import(project, jsonl_file)

    assert Event.objects.filter(project=project).count() == 3
    assert stdout.strip() == f"Imported 0 events into project {project.pk}; 3 already stored, 4 bad lines skipped."


def test_small_batches_import_everything(project, tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text(
        "".join(
            json_line(event="e", distinct_id=f"u{n}", timestamp=f"2025-0{1 + n % 3}-10T00:00:00Z") for n in range(25)
        )
    )

    stdout, _ = run_import(project, path, "--batch-size", "4")

    assert Event.objects.filter(project=project).count() == 25
    assert stdout.startswith("Imported 25 events")


def test_postgres_import_goes_through_copy_and_one_store_per_batch(project, tmp_path, django_assert_max_num_queries):
    path = tmp_path / "copy.jsonl"
    path.write_text(
        "".join(json_line(event="e", distinct_id=f"u{n}", timestamp="2025-01-10T00:00:00Z") for n in range(30))
    )
    run_import(project, tmp_path.joinpath("copy.jsonl"), "--batch-size", "1000")  # creates the partition
    Event.objects.filter(project=project).delete()

    # The project, then per batch: partition lookup, savepoint, the read of the batch's distinct ids (their persons
    # exist from the first import), temporary table, (COPY,) store, drop, release.
    with django_assert_max_num_queries(1 + 3 * 7) as captured:
        run_import(project, path, "--batch-size", "10")

    stores = [query["sql"] for query in captured.captured_queries if "INSERT INTO events_event " in query["sql"]]
    assert len(stores) == 3
    assert all("FROM events_import_batch AS batch" in sql for sql in stores)
    assert Event.objects.filter(project=project).count() == 30


def test_csv_import(project, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "event,distinct_id,timestamp,properties\n"
        'purchase,u1,2025-05-01T10:00:00Z,"{""amount"": 12.5, ""note"": ""a, b""}"\n'
        "purchase,u2,2025-05-01T11:00:00Z,{broken\n"
        "purchase,u3\n"
        "$pageview,u4,2025-05-02T00:00:00Z,\n"
        ",u5,2025-05-02T00:00:00Z,{}\n"
    )

    stdout, stderr = run_import(project, path)

    rows = Event.objects.filter(project=project).order_by("distinct_id")
    assert [(row.event, row.distinct_id, row.properties) for row in rows] == [
        ("purchase", "u1", {"amount": 12.5, "note": "a, b"}),
        ("$pageview", "u4", {}),
    ]
    assert f"line 3: {messages.CSV_PROPERTIES_NOT_JSON}" in stderr
    wrong_count = messages.CSV_WRONG_COLUMN_COUNT.format(
        count=4, columns="event,distinct_id,timestamp,properties", found=2
    )
    assert f"line 4: {wrong_count}" in stderr
    assert "line 6: Event has no name" in stderr
    assert stdout.startswith("Imported 2 events")

    run_import(project, path)
    assert Event.objects.filter(project=project).count() == 2


def test_csv_without_the_header_row_imports_nothing(project, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("purchase,u1,2025-05-01T10:00:00Z,{}\n")

    _, stderr = run_import(project, path)

    assert f"line 1: {messages.CSV_HEADER_INVALID.format(columns='event,distinct_id,timestamp,properties')}" in stderr
    assert Event.objects.filter(project=project).count() == 0


def test_unknown_project_is_an_error(jsonl_file):
    with pytest.raises(CommandError, match="Project 999999 not found"):
        call_command(
            "import_events", str(jsonl_file), "--project", "999999", stdout=io.StringIO(), stderr=io.StringIO()
        )


def test_missing_file_is_an_error(project, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run_import(project, tmp_path / "nope.jsonl")
