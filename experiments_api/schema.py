"""OpenAPI: describe personal API key authentication as the bearer security scheme."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class PersonalAPIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "experiments_api.authentication.PersonalAPIKeyAuthentication"
    name = "PersonalAPIKeyAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "phx_...",
            "description": "A personal API key (`phx_…`), also accepted as `personal_api_key` in the body or query.",
        }
