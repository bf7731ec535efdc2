"""One SQL, two transports: a ClickHouse server (clickhouse-connect, over HTTP) or chDB (ClickHouse's engine in this
process). Queries are bound client-side into ClickHouse literals, run with the same settings, and read back as
JSONCompact rows, so both transports return the same Python values.

`EVENT_STORE_URL`: unset for the Django database; `clickhouse://user:password@host:8123/database` (or
`clickhouses://` for TLS) for a server; `chdb://:memory:` or `chdb:///path/to/dir` (optionally `?database=name`) for
chDB.
"""

import datetime as dt
import functools
import json
import re
import threading
import uuid
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_DATABASE = "experiments"
# LEFT JOINs give NULL for a missing row, as in SQL; FINAL applies to every ReplacingMergeTree read, so a re-sent
# event or an old person version is never counted; CAST keeps NULLs, and a name in WHERE means the column, not a
# SELECT alias of the same name, as in PostgreSQL.
QUERY_SETTINGS = {
    "prefer_column_name_to_alias": 1,
    "enable_materialized_cte": 1,
    "join_use_nulls": 1,
    "final": 1,
    "cast_keep_nullable": 1,
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_denormals": 1,
}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")
UNSUPPORTED_URL = (
    "EVENT_STORE_URL must be clickhouse://user:password@host:port/database, clickhouses://…, chdb://:memory: or "
    "chdb:///path; got {url!r}."
)
MISSING_EXTRA = (
    "EVENT_STORE_URL={url!r} needs the optional ClickHouse packages: pip install 'experiments-api[clickhouse]'."
)


class ClickHouseError(Exception):
    """A statement failed on ClickHouse (either transport), with the server's message."""


def literal(value) -> str:
    """A Python value as a ClickHouse literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else f"CAST('{value}' AS Float64)"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return f"toDateTime64('{value.strftime('%Y-%m-%d %H:%M:%S.%f')}', 6, 'UTC')"
    if isinstance(value, uuid.UUID):
        return f"toUUID('{value}')"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"No ClickHouse literal for {type(value).__name__}")


def bind(sql: str, params: dict | None) -> str:
    """`%(name)s` placeholders replaced by literals and `%%` by `%` (the pyformat style the Django backends use)."""
    params = params or {}
    return _PLACEHOLDER.sub(lambda match: "%" if match.group(0) == "%%" else literal(params[match.group(1)]), sql)


class ClickHouseClient(Protocol):
    database: str

    def command(self, sql: str) -> None: ...

    def rows(self, sql: str) -> list[list]: ...

    def insert_json_rows(self, table: str, rows: list[dict]) -> None: ...

    def insert_json_text(self, table: str, text: str) -> None: ...


def _json_rows(text: str) -> list[list]:
    return json.loads(text)["data"] if text.strip() else []


def _json_lines(rows: list[dict]) -> str:
    return "\n".join(json.dumps(row, separators=(",", ":"), default=str) for row in rows)


class ChdbClient:
    """chDB keeps one session per process; every call goes through it, one at a time."""

    def __init__(self, path: str, database: str) -> None:
        try:
            from chdb import session
        except ImportError as error:
            raise ImproperlyConfigured(MISSING_EXTRA.format(url=f"chdb://{path}")) from error
        self.database = database
        self._lock = threading.Lock()
        self._session = session.Session() if path in ("", ":memory:") else session.Session(path)
        for name, value in QUERY_SETTINGS.items():
            self._query(f"SET {name} = {literal(value)}")

    def _query(self, sql: str, fmt: str = "CSV") -> str:
        with self._lock:
            try:
                return str(self._session.query(sql, fmt))
            except Exception as error:  # chDB raises its own error types for any failed statement
                raise ClickHouseError(str(error)) from error

    def command(self, sql: str) -> None:
        self._query(sql)

    def rows(self, sql: str) -> list[list]:
        return _json_rows(self._query(sql, "JSONCompact"))

    def insert_json_rows(self, table: str, rows: list[dict]) -> None:
        if rows:
            self.insert_json_text(table, _json_lines(rows))

    def insert_json_text(self, table: str, text: str) -> None:
        """Insert JSONEachRow text (one JSON object a line)."""
        self.command(f"INSERT INTO {self.database}.{table} FORMAT JSONEachRow\n{text}")


class ServerClient:
    """A ClickHouse server or cluster over HTTP (clickhouse-connect)."""

    def __init__(self, *, host: str, port: int, user: str, password: str, database: str, secure: bool) -> None:
        try:
            import clickhouse_connect
        except ImportError as error:
            raise ImproperlyConfigured(MISSING_EXTRA.format(url=f"clickhouse://{host}")) from error
        from clickhouse_connect.driver.exceptions import ClickHouseError as DriverError

        self.database = database
        self._driver_error = DriverError
        self._client = clickhouse_connect.get_client(
            host=host, port=port, username=user, password=password, secure=secure, settings=QUERY_SETTINGS
        )

    def _call(self, method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except self._driver_error as error:
            raise ClickHouseError(str(error)) from error

    def command(self, sql: str) -> None:
        self._call(self._client.command, sql)

    def rows(self, sql: str) -> list[list]:
        return _json_rows(self._call(self._client.raw_query, sql, fmt="JSONCompact").decode())

    def insert_json_rows(self, table: str, rows: list[dict]) -> None:
        if rows:
            self.insert_json_text(table, _json_lines(rows))

    def insert_json_text(self, table: str, text: str) -> None:
        """Insert JSONEachRow text (one JSON object a line)."""
        self._call(self._client.raw_insert, f"{self.database}.{table}", insert_block=text.encode(), fmt="JSONEachRow")


@functools.cache
def _client_for(url: str) -> ClickHouseClient:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if parts.scheme == "chdb":
        path = unquote(url[len("chdb://") :].split("?", 1)[0])
        return ChdbClient(path, database=query.get("database", [DEFAULT_DATABASE])[0])
    if parts.scheme in ("clickhouse", "clickhouses"):
        secure = parts.scheme == "clickhouses"
        return ServerClient(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8443 if secure else 8123),
            user=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=parts.path.strip("/") or DEFAULT_DATABASE,
            secure=secure,
        )
    raise ImproperlyConfigured(UNSUPPORTED_URL.format(url=url))


def clickhouse_client() -> ClickHouseClient | None:
    """The configured ClickHouse, or None when events live in the Django database."""
    url = settings.EVENT_STORE_URL
    return _client_for(url) if url else None
