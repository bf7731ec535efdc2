"""Rate limits per personal API key (or per user for session logins), rates from settings."""

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from experiments_api.models import PersonalAPIKey


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
