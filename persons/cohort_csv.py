"""A static cohort's CSV upload, read as PostHog reads it (`posthog/api/cohort.py`, CSVConfig): UTF-8 (a byte-order
mark is dropped); a single column holds person uuids under a `person_id`/`person-id`/`Person .id` header, emails
under `email`/`e-mail`, and otherwise distinct ids with the first row included; with several columns the id column
is the first person id header, else distinct id (`distinct_id`/`distinct-id`), else email. Blank cells and rows too
short for the id column are skipped. Pure parsing: adding the persons is the cohort service's (a task).
"""

import csv
import io
from dataclasses import dataclass

from persons import messages

PERSON_ID = "person_id"
DISTINCT_ID = "distinct_id"
EMAIL = "email"
HEADERS = {
    PERSON_ID: ("person_id", "person-id", "person .id"),
    DISTINCT_ID: ("distinct_id", "distinct-id"),
    EMAIL: ("email", "e-mail"),
}
# The file is read whole in the request, and its ids travel in the task's message: both stay bounded.
MAX_CSV_BYTES = 10 * 1024 * 1024


class CohortCSVError(ValueError):
    """A CSV the cohort cannot take; the message is what the client is answered (under `csv`)."""


@dataclass(frozen=True)
class CohortCSV:
    id_type: str  # PERSON_ID, DISTINCT_ID or EMAIL
    ids: tuple[str, ...]


def _header_type(cell: str) -> str | None:
    normalised = cell.strip().lower()
    return next((id_type for id_type, names in HEADERS.items() if normalised in names), None)


def _id_column(headers: list[str]) -> tuple[int, str] | None:
    """PostHog's preference among the headers: person id, then distinct id, then email."""
    types = [_header_type(header) for header in headers]
    for id_type in (PERSON_ID, DISTINCT_ID, EMAIL):
        if id_type in types:
            return types.index(id_type), id_type
    return None


def parse_cohort_csv(data: bytes) -> CohortCSV:
    """The id type and the ids (in file order, duplicates kept) of an uploaded CSV, or CohortCSVError."""
    if len(data) > MAX_CSV_BYTES:
        raise CohortCSVError(messages.CSV_TOO_LARGE.format(megabytes=MAX_CSV_BYTES // (1024 * 1024)))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CohortCSVError(messages.CSV_ENCODING_ERROR) from None
    if "\x00" in text:  # a binary file that happens to decode; PostgreSQL cannot store NUL in an id anyway
        raise CohortCSVError(messages.CSV_FORMAT_ERROR)
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if any(cell.strip() for cell in row)]
    except csv.Error:  # a field over the csv module's size limit
        raise CohortCSVError(messages.CSV_FORMAT_ERROR) from None
    if not rows:
        raise CohortCSVError(messages.CSV_EMPTY)
    first = rows[0]
    if len([cell for cell in first if cell.strip()]) <= 1:
        header_type = _header_type(first[0]) if first else None
        id_type = header_type if header_type in (PERSON_ID, EMAIL) else DISTINCT_ID
        data_rows = rows[1:] if header_type in (PERSON_ID, EMAIL) else rows
        column = 0
    else:
        found = _id_column(first)
        if found is None:
            columns = ", ".join(cell.strip() for cell in first if cell.strip())
            raise CohortCSVError(messages.CSV_MISSING_ID_COLUMN.format(columns=columns))
        column, id_type = found
        data_rows = rows[1:]
    ids = tuple(row[column].strip() for row in data_rows if len(row) > column and row[column].strip())
    if not ids:
        raise CohortCSVError(messages.CSV_NO_VALID_IDS)
    return CohortCSV(id_type=id_type, ids=ids)
