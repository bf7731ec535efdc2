"""Import events from a JSON Lines or CSV file into a project, in batches, with a progress bar on stderr."""

import os
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from events.importing import FORMATS, BadLine, CountingLines, file_events, format_for_path
from events.services import events_import_batch
from experiments_api.models import Project

DEFAULT_BATCH_SIZE = 10_000
PROGRESS_BAR_WIDTH = 30
# Redraw the progress bar at most this often (seconds).
PROGRESS_INTERVAL = 0.2


class Command(BaseCommand):
    help = (
        "Import events into a project from a JSON Lines file (one PostHog-style event per line) or a CSV file "
        "(header event,distinct_id,timestamp,properties). Bad lines are reported with their line numbers and "
        "skipped; each batch is stored whole or not at all (COPY on PostgreSQL). Events already stored are skipped, "
        "so a file can be imported again safely."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The file to import.")
        parser.add_argument("--project", type=int, required=True, help="The id of the project to import into.")
        parser.add_argument(
            "--format", choices=FORMATS, help="jsonl or csv (default: from the file name, .csv is CSV, else JSONL)."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Events per batch (default {DEFAULT_BATCH_SIZE}).",
        )

    def handle(self, *args, file: str, project: int, format: str | None, batch_size: int, **options) -> None:
        target = Project.objects.filter(pk=project).first()
        if target is None:
            raise CommandError(f"Project {project} not found: pass the id of an existing project with --project.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            stream = open(file, "rb")  # noqa: SIM115 (closed by the with below)
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.") from error
        with stream:
            lines = CountingLines(stream)
            progress = _Progress(self.stderr, total_bytes=os.fstat(stream.fileno()).st_size)
            stored, duplicates, bad_lines, batch = 0, 0, 0, []
            for item in file_events(lines, format or format_for_path(file), now=timezone.now()):
                if isinstance(item, BadLine):
                    bad_lines += 1
                    progress.clear()
                    self.stderr.write(f"line {item.number}: {item.detail}")
                    continue
                batch.append(item)
                if len(batch) >= batch_size:
                    result = events_import_batch(project=target, events=batch)
                    stored, duplicates, batch = stored + result.stored, duplicates + result.duplicates, []
                    progress.show(lines.bytes_read, stored + duplicates)
            if batch:
                result = events_import_batch(project=target, events=batch)
                stored, duplicates = stored + result.stored, duplicates + result.duplicates
            progress.show(lines.bytes_read, stored + duplicates, force=True)
            progress.finish()
        self.stdout.write(
            f"Imported {stored} events into project {target.pk}; {duplicates} already stored, "
            f"{bad_lines} bad lines skipped."
        )


def _plain(text: str) -> str:
    """No colour: stderr output of commands is styled as errors by default."""
    return text


class _Progress:
    """A one-line progress bar redrawn in place on a terminal (stderr), by bytes of the file read."""

    def __init__(self, stream, *, total_bytes: int) -> None:
        self.stream = stream
        self.total_bytes = total_bytes
        self.last_drawn = 0.0
        self.drawn = False

    def show(self, bytes_read: int, events: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_drawn < PROGRESS_INTERVAL:
            return
        self.last_drawn = now
        fraction = min(bytes_read / self.total_bytes, 1.0) if self.total_bytes else 1.0
        filled = round(fraction * PROGRESS_BAR_WIDTH)
        bar = "#" * filled + "-" * (PROGRESS_BAR_WIDTH - filled)
        self.stream.write(f"\r[{bar}] {fraction:6.1%}  {events} events", style_func=_plain, ending="")
        self.stream.flush()
        self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            self.stream.write("\r" + " " * (PROGRESS_BAR_WIDTH + 30) + "\r", style_func=_plain, ending="")
            self.drawn = False

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("")
