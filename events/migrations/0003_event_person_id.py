"""Events carry the person uuid they were ingested for. Existing events get their distinct id's deterministic
person uuid (they were stored before persons existed, so each id is its own person), then the column is NOT NULL
and indexed with the project for the squash job and person deletion."""

import uuid

from django.db import migrations, models

PERSON_UUID_NAMESPACE = uuid.UUID("932979b4-65c3-4424-8467-0b66ec27bc22")
BACKFILL_CHUNK = 1000


def backfill_person_ids(apps, schema_editor):
    Event = apps.get_model("events", "Event")
    pairs = Event.objects.filter(person_id__isnull=True).values_list("project_id", "distinct_id").distinct()
    chunk: list[tuple[int, str]] = []
    for pair in pairs.iterator():
        chunk.append(pair)
        if len(chunk) >= BACKFILL_CHUNK:
            _update(Event, chunk)
            chunk = []
    if chunk:
        _update(Event, chunk)


def _update(Event, pairs: list[tuple[int, str]]) -> None:
    for project_id, distinct_id in pairs:
        Event.objects.filter(project_id=project_id, distinct_id=distinct_id, person_id__isnull=True).update(
            person_id=uuid.uuid5(PERSON_UUID_NAMESPACE, f"{project_id}:{distinct_id}")
        )


class Migration(migrations.Migration):
    dependencies = [("events", "0002_partition_events_by_month")]

    operations = [
        migrations.AddField(model_name="event", name="person_id", field=models.UUIDField(null=True)),
        migrations.RunPython(backfill_person_ids, migrations.RunPython.noop),
        migrations.AlterField(model_name="event", name="person_id", field=models.UUIDField()),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(fields=["project", "person_id"], name="event_project_person"),
        ),
    ]
