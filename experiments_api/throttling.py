"""Rate limits per personal API key (or per user for session logins), rates from settings."""

import logging
import os

from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from experiments_api.cache import default_cache_redis
from experiments_api.models import PersonalAPIKey

logger = logging.getLogger(__name__)

# The check and the record of a request in one round trip to Redis, atomically: the key's request times are a sorted
# set (score: the time); times at or before the longest window's start are dropped, and a rate refuses when its
# window already holds its number of requests, whose oldest time is returned (for Retry-After) with the rate's
# position. ARGV: now, the longest window's start, its length (the key's expiry), a unique member for this request,
# then each rate's number of requests and window start. Times are computed in Python and passed as text, exactly
# (Lua would print a number it computed with 14 digits).
RECORD_REQUEST_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
for i = 5, #ARGV, 2 do
    local limit = tonumber(ARGV[i])
    local nth_newest = redis.call('ZREVRANGE', KEYS[1], limit - 1, limit - 1, 'WITHSCORES')
    if nth_newest[2] and tonumber(nth_newest[2]) > tonumber(ARGV[i + 1]) then
        return {(i - 5) / 2, nth_newest[2]}
    end
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return false
"""


class PersonalAPIKeyThrottle(SimpleRateThrottle):
    """The burst and the sustained rate of a key (or of a session's user), both checked against one history of
    its request times.

    A rate is exceeded when its window already holds its number of requests; a refused request is not recorded,
    and Retry-After is DRF's estimate for the rate that refused it (until the oldest request of its full window
    leaves it). With Redis (the cache of every deployment) the history is a sorted set checked and updated by one
    script call, one round trip whatever its length; with another cache (the embedded default's local memory) it
    is a list read and written through Django's cache API.
    """

    scope = "personal_api_key"
    rate_scopes = ("personal_api_key_burst", "personal_api_key_sustained")

    def __init__(self) -> None:
        self.rates = [self.parse_rate(self.THROTTLE_RATES[scope]) for scope in self.rate_scopes]
        self.rate = "several"  # tells SimpleRateThrottle not to look a single rate up
        self.num_requests = None
        self.duration = max(duration for _, duration in self.rates)

    def get_cache_key(self, request: Request, view) -> str | None:
        if isinstance(request.auth, PersonalAPIKey):
            ident = f"key-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view) -> bool:
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        redis = default_cache_redis()
        refusal = self._record_in_redis(redis) if redis is not None else self._record_in_cache()
        if refusal is not None:
            self.refusing_rate, self.window_start = refusal
            return False
        return True

    def _record_in_redis(self, redis) -> tuple[tuple[int, int], float] | None:
        """Check and record the request in one script call; the refusing rate and its window's oldest request."""
        now = self.now
        rate_args = [value for num_requests, duration in self.rates for value in (num_requests, repr(now - duration))]
        refused = redis.register_script(RECORD_REQUEST_SCRIPT)(
            # Not the cache API's key: a list that an earlier version kept there would be the wrong type.
            keys=[self.cache.make_key(f"{self.key}:times")],
            args=[repr(now), repr(now - self.duration), self.duration, f"{now!r}:{os.urandom(6).hex()}", *rate_args],
        )
        if refused is None:
            return None
        position, window_start = refused
        return self.rates[int(position)], float(window_start)

    def _record_in_cache(self) -> tuple[tuple[int, int], float] | None:
        history = self.cache.get(self.key, [])  # newest first
        while history and history[-1] <= self.now - self.duration:
            history.pop()
        for num_requests, duration in self.rates:
            # The window is full when its num_requests-th newest entry is in it.
            if len(history) >= num_requests and history[num_requests - 1] > self.now - duration:
                return (num_requests, duration), history[num_requests - 1]
        history.insert(0, self.now)
        self.cache.set(self.key, history, self.duration)
        return None

    def wait(self) -> float:
        """Until the oldest request in the refusing rate's window leaves it (DRF's estimate for a full window)."""
        _num_requests, duration = self.refusing_rate
        return duration - (self.now - self.window_start)


class FailOpenThrottleMixin:
    """For the endpoints SDKs depend on, which keep answering while the cache is down: a cache error lets the
    request through unthrottled (logged) instead of refusing it with a 503 as the rest of the API does."""

    def allow_request(self, request: Request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError:
            logger.warning("The cache is unavailable; %s lets the request through unthrottled", view, exc_info=True)
            return True


class SDKThrottle(FailOpenThrottleMixin, PersonalAPIKeyThrottle):
    pass
