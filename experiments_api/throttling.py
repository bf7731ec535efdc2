"""Rate limits per personal API key (or per user for session logins), rates from settings."""

import logging

from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from experiments_api.models import PersonalAPIKey

logger = logging.getLogger(__name__)


class PersonalAPIKeyThrottle(SimpleRateThrottle):
    """The burst and the sustained rate of a key (or of a session's user), both checked against one history of
    its request times: one cache read and one write per request, where a DRF throttle per rate takes two of each.

    The history keeps the longest window; a rate is exceeded when its window already holds its number of
    requests. A refused request is not recorded, and Retry-After is DRF's estimate for the rate that refused it.
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
        self.history = self.cache.get(self.key, [])  # newest first
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        for num_requests, duration in self.rates:
            # The history is newest first: the window is full when its num_requests-th newest entry is in it.
            if len(self.history) >= num_requests and self.history[num_requests - 1] > self.now - duration:
                self.refusing_rate = (num_requests, duration)
                return self.throttle_failure()
        return self.throttle_success()

    def wait(self) -> float:
        """Until the oldest request in the refusing rate's window leaves it (DRF's estimate for a full window)."""
        num_requests, duration = self.refusing_rate
        return duration - (self.now - self.history[num_requests - 1])


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
