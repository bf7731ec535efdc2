"""Django's Redis cache backend, with one redis-py client per connection pool instead of a new one per call.

Django builds a `redis.Redis` for every cache operation (a hook for sharding clients, which we do not use). With
redis-py 8 building one costs more CPU than the round trip itself, and every throttled API request and every
`/flags/` request makes at least one cache call. A client is safe to share between threads: it takes a connection
from its pool for each command.
"""

import redis
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    """Set as the cache BACKEND in place of django.core.cache.backends.redis.RedisCache."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient


def default_cache_redis() -> redis.Redis | None:
    """The redis-py client of the default cache (for what Django's cache API lacks, such as publish/subscribe), or
    None when the default cache is not Redis. Django keeps a cache backend, so a client, per thread."""
    backend = caches["default"]
    if not isinstance(backend, DjangoRedisCache):
        return None
    return backend._cache.get_client(write=True)
