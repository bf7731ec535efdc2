"""Deduplicate events on (project, uuid, timestamp) and, on PostgreSQL, range-partition events_event by month.

A unique index of a partitioned table must contain the partition key, hence the new unique constraint. On
PostgreSQL the plain table is then rebuilt as a partitioned one with a DEFAULT partition (a safety net for rows
written outside the ingest path) and one partition per month already holding data; ingestion creates further
monthly partitions on demand (events/partitions.py). The primary key becomes (id, timestamp) in the database,
while Django keeps addressing rows by `id`, which the sequence keeps unique. SQLite keeps the plain table.
"""

import django.db.models.deletion
from django.db import migrations, models

PARTITION_SQL = """
SET LOCAL TIME ZONE 'UTC';
CREATE TABLE events_event_partitioned (LIKE events_event INCLUDING DEFAULTS) PARTITION BY RANGE ("timestamp");
CREATE SEQUENCE events_event_partitioned_id_seq OWNED BY events_event_partitioned.id;
ALTER TABLE events_event_partitioned ALTER COLUMN id SET DEFAULT nextval('events_event_partitioned_id_seq');
CREATE TABLE events_event_default PARTITION OF events_event_partitioned DEFAULT;
DO $$
DECLARE month_start timestamptz;
BEGIN
    FOR month_start IN SELECT DISTINCT date_trunc('month', "timestamp") FROM events_event LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF events_event_partitioned FOR VALUES FROM (%L) TO (%L)',
            'events_event_p' || to_char(month_start, 'YYYYMM'), month_start, month_start + interval '1 month'
        );
    END LOOP;
END $$;
INSERT INTO events_event_partitioned SELECT * FROM events_event;
SELECT setval('events_event_partitioned_id_seq', COALESCE(MAX(id), 0) + 1, false) FROM events_event_partitioned;
DROP TABLE events_event;
ALTER TABLE events_event_partitioned RENAME TO events_event;
ALTER SEQUENCE events_event_partitioned_id_seq RENAME TO events_event_id_seq;
ALTER TABLE events_event ADD CONSTRAINT events_event_pkey PRIMARY KEY (id, "timestamp");
ALTER TABLE events_event ADD CONSTRAINT unique_event_uuid_per_project UNIQUE (project_id, uuid, "timestamp");
CREATE INDEX event_project_event_ts ON events_event (project_id, event, "timestamp");
CREATE INDEX event_project_distinct_id ON events_event (project_id, distinct_id);
"""

UNPARTITION_SQL = """
CREATE TABLE events_event_plain (LIKE events_event INCLUDING DEFAULTS);
INSERT INTO events_event_plain SELECT * FROM events_event;
ALTER SEQUENCE events_event_id_seq OWNED BY events_event_plain.id;
DROP TABLE events_event;
ALTER TABLE events_event_plain RENAME TO events_event;
ALTER TABLE events_event ADD CONSTRAINT events_event_pkey PRIMARY KEY (id);
ALTER TABLE events_event ADD CONSTRAINT unique_event_uuid_per_project UNIQUE (project_id, uuid, "timestamp");
CREATE INDEX event_project_event_ts ON events_event (project_id, event, "timestamp");
CREATE INDEX event_project_distinct_id ON events_event (project_id, distinct_id);
"""


def partition_on_postgresql(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PARTITION_SQL, params=None)


def unpartition_on_postgresql(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNPARTITION_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        ("experiments_api", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="event",
            name="unique_event_uuid_per_project",
        ),
        migrations.AlterField(
            model_name="event",
            name="project",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="experiments_api.project",
            ),
        ),
        migrations.AddConstraint(
            model_name="event",
            constraint=models.UniqueConstraint(
                fields=("project", "uuid", "timestamp"), name="unique_event_uuid_per_project"
            ),
        ),
        migrations.RunPython(partition_on_postgresql, unpartition_on_postgresql),
    ]
