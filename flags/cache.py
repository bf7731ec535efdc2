"""A project's flag definitions kept in each server process, dropped by every process when the project's flags change.

Every `/flags/` request evaluates all of a project's flags, so reading them from PostgreSQL each time was most of
its cost. Each process keeps the definitions it loaded and subscribes to CHANGES_CHANNEL on Redis; a write publishes
the project's id there (the services in flags.services call `project_flags_changed`), once when it writes and again
when its transaction commits, so a process that reloaded the old rows in between drops them too.

A lookup first reads what the subscription has received, without waiting: Redis writes a message to every
subscriber's socket in the same pass of its event loop as its answer to the writer, and the writer's HTTP answer
goes out only after that answer, so the client's next request, whichever process serves it, finds the message
already there and reads the new flags (tests/test_flag_definitions_cache.py checks it against two gunicorn workers). A
cached lookup makes no network round trip at all (reading the generation token it used to make one Redis round trip
per request).

Until the subscription is confirmed, and whenever it breaks (Redis restarted or unreachable: messages may have been
missed), the process drops its copies and reads the database, trying Redis again after CACHE_RETRY_SECONDS. A copy
is never kept longer than FLAG_DEFINITIONS_CACHE_SECONDS, which bounds how long an invalidation lost with Redis (a
write while it was unreachable) can leave a process behind; 0 turns the cache off.
"""

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError

from experiments_api.cache import default_cache_redis

logger = logging.getLogger(__name__)

# Publish/subscribe channels are shared by a Redis server's databases: the channel names the database.
CHANGES_CHANNEL = "flags:changed:{database}"
# After a failed Redis call, requests go straight to the database for this long before that Redis is tried again.
CACHE_RETRY_SECONDS = 5.0
SUBSCRIBE_TIMEOUT_SECONDS = 1.0
MAX_CACHED_PROJECTS = 10_000

# project id → (monotonic expiry, definitions); definitions are shared, so callers must not mutate them.
_definitions: dict[int, tuple[float, list[dict]]] = {}
# project id → how many changes this process has read for it, and how many times every copy was dropped (a
# subscription broke or was made): a load only keeps its rows if neither moved while it read them.
_changes_seen: dict[int, int] = {}
_copies_dropped = 0
_lock = threading.Lock()


class _Subscription:
    """This process's subscription to CHANGES_CHANNEL on the default cache's Redis."""

    def __init__(self) -> None:
        self.pubsub = None
        self.redis = None  # the server and database it is on: another one means the cache settings changed
        self.pid = None
        self.confirmed = False
        self.unreachable_until = 0.0

    def read_changes(self) -> bool:
        """Apply every change received so far; False when the copies cannot be trusted (no confirmed subscription).
        Call with _lock held."""
        client = default_cache_redis()
        if client is None:
            return False
        same_redis = self.redis == _redis_identity(client) and self.pid == os.getpid()
        if self.pubsub is None or not same_redis:
            if same_redis and time.monotonic() < self.unreachable_until:
                return False
            if not self.open(client):
                return False
        try:
            while (message := self.pubsub.get_message(timeout=0)) is not None:
                self.apply(message)
        except (RedisError, OSError):
            self.fail("The cache is unreachable: flag definitions are read from the database")
            return False
        return self.confirmed

    def open(self, client) -> bool:
        """Subscribe; False when Redis cannot be reached."""
        self.close()
        self.pubsub, self.redis, self.pid, self.confirmed = client.pubsub(), _redis_identity(client), os.getpid(), False
        try:
            self.pubsub.subscribe(_channel(client))
            # One round trip, once per process: wait for the confirmation so that this lookup can keep its rows.
            deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_SECONDS
            while not self.confirmed and (left := deadline - time.monotonic()) > 0:
                if (message := self.pubsub.get_message(timeout=left)) is not None:
                    self.apply(message)
        except (RedisError, OSError):
            self.fail("The cache is unreachable: flag definitions are read from the database")
            return False
        return True

    def apply(self, message: dict) -> None:
        if message["type"] == "subscribe":
            # Subscribed (again, after a reconnection): changes made before may have been missed.
            _drop_every_copy()
            self.confirmed = True
        elif message["type"] == "message":
            project_id = int(message["data"])
            _definitions.pop(project_id, None)
            _changes_seen[project_id] = _changes_seen.get(project_id, 0) + 1

    def fail(self, warning: str) -> None:
        logger.warning(warning, exc_info=True)
        self.close()
        self.unreachable_until = time.monotonic() + CACHE_RETRY_SECONDS

    def close(self) -> None:
        _drop_every_copy()
        if self.pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                self.pubsub.close()
        self.pubsub, self.confirmed = None, False


_subscription = _Subscription()


def _drop_every_copy() -> None:
    global _copies_dropped
    _definitions.clear()
    _copies_dropped += 1


def project_flag_definitions(project_id: int, *, load: Callable[[], list[dict]]) -> list[dict]:
    """The project's flag definitions: this process's copy unless the project's flags changed since it was loaded,
    else `load()` (which reads the database). The list and its dicts are shared between requests: do not mutate
    them."""
    lifetime = settings.FLAG_DEFINITIONS_CACHE_SECONDS
    if lifetime <= 0:
        return load()
    with _lock:
        if not _subscription.read_changes():
            return load()
        entry = _definitions.get(project_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        changes_before = (_copies_dropped, _changes_seen.get(project_id, 0))
    definitions = load()
    with _lock:
        # Keep the rows only if no change of the project arrived while they were read (they may predate it).
        if _subscription.read_changes() and (_copies_dropped, _changes_seen.get(project_id, 0)) == changes_before:
            if len(_definitions) >= MAX_CACHED_PROJECTS:
                _definitions.clear()
            _definitions[project_id] = (time.monotonic() + lifetime, definitions)
    return definitions


def project_flags_changed(project_id: int) -> None:
    """Tell every process that the project's flags (or anything their evaluation reads) changed.

    Call it inside the writing transaction: the change is published at once (so this process and this
    transaction's own reads see it) and again when the transaction commits, so a process that reloaded the old rows
    in between does not keep them.
    """
    _publish(project_id)
    transaction.on_commit(lambda: _publish(project_id))


def _publish(project_id: int) -> None:
    with _lock:
        _definitions.pop(project_id, None)
        _changes_seen[project_id] = _changes_seen.get(project_id, 0) + 1
    client = default_cache_redis()
    if client is None:
        return
    try:
        client.publish(_channel(client), str(project_id))
    except RedisError:
        logger.warning(
            "The cache is unreachable: other processes may serve project %s's previous flags for up to %s seconds",
            project_id,
            settings.FLAG_DEFINITIONS_CACHE_SECONDS,
            exc_info=True,
        )


def _channel(client) -> str:
    return CHANGES_CHANNEL.format(database=client.connection_pool.connection_kwargs.get("db", 0))


def _redis_identity(client) -> tuple:
    """Where `client` connects (each thread has its own cache backend and connection pool, so pools differ)."""
    kwargs = client.connection_pool.connection_kwargs
    return tuple(kwargs.get(name) for name in ("host", "port", "path", "db"))
