"""Rate limits per personal API key (or per user for session logins), rates from settings."""

import logging

from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from experiments_api.models import PersonalAPIKey

logger = logging.getLogger(__name__)


class PersonalAPIKeyThrottle(SimpleRateThrottle):
    def get_cache_key(self, request: Request, view) -> str | None:
        if isinstance(request.auth, PersonalAPIKey):
            ident = f"key-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


class PersonalAPIKeyBurstThrottle(PersonalAPIKeyThrottle):
    scope = "personal_api_key_burst"


class PersonalAPIKeySustainedThrottle(PersonalAPIKeyThrottle):
    scope = "personal_api_key_sustained"


class FailOpenThrottleMixin:
    """For the endpoints SDKs depend on, which keep answering while the cache is down: a cache error lets the
    request through unthrottled (logged) instead of refusing it with a 503 as the rest of the API does."""

    def allow_request(self, request: Request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError:
            logger.warning("The cache is unavailable; %s lets the request through unthrottled", view, exc_info=True)
            return True


class SDKBurstThrottle(FailOpenThrottleMixin, PersonalAPIKeyBurstThrottle):
    pass


class SDKSustainedThrottle(FailOpenThrottleMixin, PersonalAPIKeySustainedThrottle):
    pass
