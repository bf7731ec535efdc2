"""Create the ClickHouse event store's database and tables (idempotent: existing ones are left as they are)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from events.clickhouse.client import clickhouse_client
from events.clickhouse.schema import Layout, clickhouse_migrate

NOT_CONFIGURED = "EVENT_STORE_URL is not a ClickHouse URL: set it to clickhouse://… or chdb://… first."


class Command(BaseCommand):
    help = (
        "Create the ClickHouse tables of EVENT_STORE_URL (events, person, person_distinct_id2, person_overrides); "
        "with CLICKHOUSE_CLUSTER, Replicated tables and a Distributed events table sharded by person. Safe to run "
        "again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--print", action="store_true", help="Print the statements instead of running them.")

    def handle(self, *args, print: bool = False, **options) -> None:
        client = clickhouse_client()
        if client is None:
            raise CommandError(NOT_CONFIGURED)
        if print:
            for statement in Layout(database=client.database, cluster=settings.CLICKHOUSE_CLUSTER).statements():
                self.stdout.write(statement + ";")
            return
        statements = clickhouse_migrate(client, cluster=settings.CLICKHOUSE_CLUSTER)
        self.stdout.write(f"ClickHouse database {client.database}: {len(statements)} statements applied.")
