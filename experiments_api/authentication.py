"""Personal API key authentication, looked up where PostHog looks: header, then body, then query string."""

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from experiments_api import messages
from experiments_api.models import PersonalAPIKey, User, hash_personal_api_key
from experiments_api.services import personal_api_key_mark_used

PERSONAL_API_KEY_FIELD = "personal_api_key"
OAUTH_TOKEN_PREFIX = "pha_"


class PersonalAPIKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, PersonalAPIKey] | None:
        found = self.find_key_with_source(request)
        if found is None:
            return None
        raw_value, source = found
        key = (
            PersonalAPIKey.objects.active()
            .select_related("user")
            .filter(secure_value=hash_personal_api_key(raw_value))
            .first()
        )
        if key is None:
            raise exceptions.AuthenticationFailed(messages.INVALID_PERSONAL_API_KEY.format(source=source))
        personal_api_key_mark_used(key=key)
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword

    @classmethod
    def find_key_with_source(cls, request: Request) -> tuple[str, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() == cls.keyword.lower() and token and not token.startswith(OAUTH_TOKEN_PREFIX):
            return token, "Authorization header"
        body_value = cls._body_value(request)
        if body_value:
            return body_value, "body"
        query_value = request.query_params.get(PERSONAL_API_KEY_FIELD)
        if query_value:
            return query_value, "query string"
        return None

    @staticmethod
    def _body_value(request: Request) -> str | None:
        """Read the key from the body. A malformed body fails here with its own 400 parse error: swallowing it
        would leave DRF's cached `request.data` empty, and the view would validate `{}` instead."""
        data = request.data
        if hasattr(data, "get"):
            value = data.get(PERSONAL_API_KEY_FIELD)
            return value if isinstance(value, str) and value else None
        return None
