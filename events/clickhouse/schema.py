"""ClickHouse tables in PostHog's layout, created idempotently (`manage.py clickhouse_migrate`).

- `events`: ReplacingMergeTree partitioned by month, ordered by (project, day, event, distinct id, uuid), so a
  re-sent event (same uuid) collapses into one row; every read uses FINAL (client.QUERY_SETTINGS).
  The exposure scan's two properties (`$feature_flag`, `$feature_flag_response`) are also materialised columns,
  as PostHog materialises hot properties: computed on insert, read without parsing the JSON.
- `person`, `person_distinct_id2`, `person_overrides`: ReplacingMergeTree on (version, is_deleted), the newest
  version of a row winning, as PostHog keeps its person tables.

With a cluster (`CLICKHOUSE_CLUSTER`), tables are created ON CLUSTER with Replicated engines: events in
`sharded_events` on each shard behind a Distributed `events` sharded by person (sipHash64(person_id)), and the
person tables fully replicated on every node (PostHog's "noshard" tables), so joins to them stay local.
Columns use this server's names (project_id, uuid, new_person_id) so one SQL reads both stores.
"""

from dataclasses import dataclass

EVENTS_TABLE = "events"
SHARDED_EVENTS_TABLE = "sharded_events"
PERSONS_TABLE = "person"
DISTINCT_IDS_TABLE = "person_distinct_id2"
OVERRIDES_TABLE = "person_overrides"

_EVENT_COLUMNS = """
    uuid UUID,
    event String,
    properties String,
    timestamp DateTime64(6, 'UTC'),
    project_id Int64,
    distinct_id String,
    person_id UUID,
    created_at DateTime64(6, 'UTC'),
    _timestamp DateTime DEFAULT now()
"""
# Property key → column holding its text (as ClickHouseDialect.text_property reads it); NULL when unset or null.
MATERIALIZED_PROPERTIES = {
    "$feature_flag": "mat_feature_flag",
    "$feature_flag_response": "mat_feature_flag_response",
}
_MATERIALIZED_COLUMNS = [
    f"{column} Nullable(String) MATERIALIZED JSONExtract(properties, '{key}', 'Nullable(String)')"
    for key, column in MATERIALIZED_PROPERTIES.items()
]
_EVENTS_KEYS = """
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, toDate(timestamp), event, cityHash64(distinct_id), cityHash64(uuid))
SAMPLE BY cityHash64(distinct_id)
"""
_PERSON_TABLES = {
    PERSONS_TABLE: (
        """
    uuid UUID,
    project_id Int64,
    properties String,
    is_identified UInt8,
    created_at DateTime64(6, 'UTC'),
    version UInt64,
    is_deleted UInt8 DEFAULT 0,
    _timestamp DateTime DEFAULT now()
""",
        "ORDER BY (project_id, uuid)",
    ),
    DISTINCT_IDS_TABLE: (
        """
    project_id Int64,
    distinct_id String,
    person_id UUID,
    version Int64,
    is_deleted UInt8 DEFAULT 0,
    _timestamp DateTime DEFAULT now()
""",
        "ORDER BY (project_id, distinct_id)",
    ),
    OVERRIDES_TABLE: (
        """
    project_id Int64,
    old_person_id UUID,
    new_person_id UUID,
    created_at DateTime64(6, 'UTC'),
    version UInt64,
    is_deleted UInt8 DEFAULT 0,
    _timestamp DateTime DEFAULT now()
""",
        "ORDER BY (project_id, old_person_id)",
    ),
}


@dataclass(frozen=True)
class Layout:
    database: str
    cluster: str = ""

    def _on_cluster(self) -> str:
        return f" ON CLUSTER '{self.cluster}'" if self.cluster else ""

    def _engine(self, table: str, version: str, *, sharded: bool) -> str:
        if not self.cluster:
            return f"ReplacingMergeTree({version})"
        shard = "{shard}" if sharded else "noshard"
        return f"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{self.database}.{table}', '{{replica}}', {version})"

    def statements(self) -> list[str]:
        """CREATE … IF NOT EXISTS statements, in order; running them again changes nothing."""
        on_cluster, db = self._on_cluster(), self.database
        statements = [f"CREATE DATABASE IF NOT EXISTS {db}{on_cluster}"]
        events_local = SHARDED_EVENTS_TABLE if self.cluster else EVENTS_TABLE
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {db}.{events_local}{on_cluster} ({_EVENT_COLUMNS},\n    "
            + ",\n    ".join(_MATERIALIZED_COLUMNS)
            + ")\n"
            f"ENGINE = {self._engine(events_local, '_timestamp', sharded=True)}{_EVENTS_KEYS}"
        )
        if self.cluster:
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {db}.{EVENTS_TABLE}{on_cluster} AS {db}.{SHARDED_EVENTS_TABLE}\n"
                f"ENGINE = Distributed('{self.cluster}', '{db}', '{SHARDED_EVENTS_TABLE}', sipHash64(person_id))"
            )
        # Tables created before a materialised column was added get it (older parts compute it when read).
        for table in [events_local, EVENTS_TABLE] if self.cluster else [EVENTS_TABLE]:
            statements.extend(
                f"ALTER TABLE {db}.{table}{on_cluster} ADD COLUMN IF NOT EXISTS {column}"
                for column in _MATERIALIZED_COLUMNS
            )
        for table, (columns, order) in _PERSON_TABLES.items():
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {db}.{table}{on_cluster} ({columns})\n"
                f"ENGINE = {self._engine(table, 'version, is_deleted', sharded=False)}\n{order}"
            )
        return statements

    def events_mutation(self, action: str) -> str:
        """`ALTER TABLE … UPDATE/DELETE …` of the events' storage table (each shard's on a cluster), returning
        once every replica has applied it (mutations_sync = 2)."""
        table = SHARDED_EVENTS_TABLE if self.cluster else EVENTS_TABLE
        return f"ALTER TABLE {self.database}.{table}{self._on_cluster()} {action} SETTINGS mutations_sync = 2"

    def tables(self) -> list[str]:
        local = [SHARDED_EVENTS_TABLE] if self.cluster else []
        return [*local, EVENTS_TABLE, *_PERSON_TABLES]


def clickhouse_migrate(client, *, cluster: str = "") -> list[str]:
    """Create the database and tables that are missing; returns the statements run."""
    statements = Layout(database=client.database, cluster=cluster).statements()
    for statement in statements:
        client.command(statement)
    return statements
