"""Copy a project's events and persons from the Django database into the ClickHouse event store, resumably."""

from django.core.management.base import BaseCommand, CommandError

from events.clickhouse.client import clickhouse_client
from events.clickhouse.copy import project_copy_to_clickhouse
from events.management.commands.clickhouse_migrate import NOT_CONFIGURED
from experiments_api.models import Project

PROJECT_NOT_FOUND = "Project {project} not found: pass the id of an existing project with --project."


class Command(BaseCommand):
    help = (
        "Copy a project's events (oldest first, in blocks) and its persons, distinct ids and overrides from the "
        "Django database into EVENT_STORE_URL's ClickHouse. Interrupted, it resumes where it stopped when run again; "
        "events already copied are not copied twice. Run clickhouse_migrate first."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", type=int, required=True, help="The id of the project to copy.")

    def handle(self, *args, project: int, **options) -> None:
        client = clickhouse_client()
        if client is None:
            raise CommandError(NOT_CONFIGURED)
        if not Project.objects.filter(pk=project).exists():
            raise CommandError(PROJECT_NOT_FOUND.format(project=project))
        result = project_copy_to_clickhouse(
            client, project_id=project, progress=lambda copied: self.stderr.write(f"{copied} events copied")
        )
        self.stdout.write(
            f"Copied {result.events} events ({result.skipped} already there), {result.persons} persons, "
            f"{result.distinct_ids} distinct ids and {result.overrides} overrides of project {project} to ClickHouse."
        )
