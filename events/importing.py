"""Events read from a JSON Lines or CSV file for `import_events`, each line validated, bad ones reported by number."""

import csv
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from events import messages
from events.validation import InvalidEvent, ValidEvent, event_validate

JSON_LINES = "jsonl"
CSV = "csv"
FORMATS = (JSON_LINES, CSV)
CSV_COLUMNS = ("event", "distinct_id", "timestamp", "properties")
# Events without a uuid get one derived from their content, so importing the same file twice stores them once.
IMPORT_UUID_NAMESPACE = uuid.UUID("5b0f6a52-8f0e-4c57-9d1a-3c3f0b7e2a61")


@dataclass(frozen=True)
class BadLine:
    number: int
    detail: str


class CountingLines:
    """The text lines of a binary stream, counting the bytes read (for the progress bar)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.bytes_read = 0

    def __iter__(self) -> Iterator[str]:
        for raw in self.stream:
            self.bytes_read += len(raw)
            yield raw.decode("utf-8", errors="replace")


def format_for_path(path: str) -> str:
    return CSV if path.lower().endswith(".csv") else JSON_LINES


def file_events(lines: CountingLines, file_format: str, *, now: datetime) -> Iterator[ValidEvent | BadLine]:
    """Each line's event, or a BadLine saying why the line is skipped."""
    if file_format == CSV:
        yield from _csv_events(lines, now=now)
    else:
        yield from _json_lines_events(lines, now=now)


def _json_lines_events(lines: CountingLines, *, now: datetime) -> Iterator[ValidEvent | BadLine]:
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError):
            yield BadLine(number, messages.LINE_NOT_JSON)
            continue
        if isinstance(raw, dict) and raw.get("uuid") is None:
            raw["uuid"] = str(uuid.uuid5(IMPORT_UUID_NAMESPACE, text))
        yield _validated(number, raw, now=now)


def _csv_events(lines: CountingLines, *, now: datetime) -> Iterator[ValidEvent | BadLine]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return
    if tuple(column.strip() for column in header) != CSV_COLUMNS:
        yield BadLine(1, messages.CSV_HEADER_INVALID.format(columns=",".join(CSV_COLUMNS)))
        return
    first_line = reader.line_num + 1
    for row in reader:
        number, first_line = first_line, reader.line_num + 1
        if not row:
            continue
        if len(row) != len(CSV_COLUMNS):
            yield BadLine(
                number,
                messages.CSV_WRONG_COLUMN_COUNT.format(
                    count=len(CSV_COLUMNS), columns=",".join(CSV_COLUMNS), found=len(row)
                ),
            )
            continue
        event, distinct_id, timestamp, properties_text = row
        try:
            properties = json.loads(properties_text) if properties_text.strip() else {}
        except (ValueError, RecursionError):
            yield BadLine(number, messages.CSV_PROPERTIES_NOT_JSON)
            continue
        raw = {
            "event": event,
            "distinct_id": distinct_id,
            "timestamp": timestamp or None,
            "properties": properties,
            "uuid": str(uuid.uuid5(IMPORT_UUID_NAMESPACE, "\x1f".join(row))),
        }
        yield _validated(number, raw, now=now)


def _validated(number: int, raw: object, *, now: datetime) -> ValidEvent | BadLine:
    try:
        return event_validate(raw, now=now)
    except InvalidEvent as error:
        return BadLine(number, error.message)
