"""A project's flag definitions kept in each server process, invalidated on every change of the project's flags.

Every `/flags/` request evaluates all of a project's flags, so reading them from PostgreSQL each time was most of
its cost. Each process keeps the definitions it loaded, tagged with the project's *flag generation*: a random token
in Django's cache (Redis, shared by every process) that each write replaces, once when it writes and again when its
transaction commits (the services in flags.services call `project_flags_changed`). A request reads the token (one
Redis round trip) and reuses its copy only while the token is unchanged, so every process sees a change on its next
request.

When the cache cannot be reached, requests read the database (as without the cache) and the cache is not asked
again for CACHE_RETRY_SECONDS, so a Redis outage costs no request a timeout after the first. A copy is never kept
longer than FLAG_DEFINITIONS_CACHE_SECONDS, which bounds how long an invalidation lost with Redis (a write while
it was unreachable) can leave a process behind; 0 turns the cache off.
"""

import logging
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

GENERATION_KEY = "flags:generation:{project_id}"
# After a failed cache call, requests go straight to the database for this long before the cache is tried again.
CACHE_RETRY_SECONDS = 5.0
MAX_CACHED_PROJECTS = 10_000

# project id → (generation, monotonic expiry, definitions); definitions are shared, so callers must not mutate them.
_definitions: dict[int, tuple[str, float, list[dict]]] = {}
_cache_unreachable_until = 0.0


def project_flag_definitions(project_id: int, *, load: Callable[[], list[dict]]) -> list[dict]:
    """The project's flag definitions: this process's copy while the project's generation is unchanged, else
    `load()` (which reads the database). The list and its dicts are shared between requests: do not mutate them."""
    lifetime = settings.FLAG_DEFINITIONS_CACHE_SECONDS
    if lifetime <= 0:
        return load()
    generation = _current_generation(project_id)
    if generation is None:
        return load()
    now = time.monotonic()
    entry = _definitions.get(project_id)
    if entry is not None and entry[0] == generation and entry[1] > now:
        return entry[2]
    definitions = load()
    if len(_definitions) >= MAX_CACHED_PROJECTS:
        _definitions.clear()
    _definitions[project_id] = (generation, now + lifetime, definitions)
    return definitions


def project_flags_changed(project_id: int) -> None:
    """Tell every process that the project's flags (or anything their evaluation reads) changed.

    Call it inside the writing transaction: the generation is replaced at once (so this transaction's own reads, and
    this process, see the change) and again when the transaction commits, so a process that reloaded the old rows
    in between does not keep them.
    """
    _replace_generation(project_id)
    transaction.on_commit(lambda: _replace_generation(project_id))


def _current_generation(project_id: int) -> str | None:
    """The project's generation token, created when missing (a restarted Redis has none); None when the cache is
    unreachable."""
    global _cache_unreachable_until
    if time.monotonic() < _cache_unreachable_until:
        return None
    key = GENERATION_KEY.format(project_id=project_id)
    try:
        generation = cache.get(key)
        if generation is None:
            cache.add(key, uuid.uuid4().hex, timeout=None)
            generation = cache.get(key)
    except RedisError:
        logger.warning("The cache is unreachable: flag definitions are read from the database", exc_info=True)
        _cache_unreachable_until = time.monotonic() + CACHE_RETRY_SECONDS
        # Copies tagged while the cache was last reachable may have missed invalidations meanwhile.
        _definitions.clear()
        return None
    return generation


def _replace_generation(project_id: int) -> None:
    _definitions.pop(project_id, None)
    try:
        cache.set(GENERATION_KEY.format(project_id=project_id), uuid.uuid4().hex, timeout=None)
    except RedisError:
        logger.warning(
            "The cache is unreachable: other processes may serve project %s's previous flags for up to %s seconds",
            project_id,
            settings.FLAG_DEFINITIONS_CACHE_SECONDS,
            exc_info=True,
        )
