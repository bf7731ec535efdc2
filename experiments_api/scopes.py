"""API scopes: which scope an action needs and whether a key's scopes grant it."""

from django.core.exceptions import ValidationError

SCOPE_OBJECTS = ("experiment", "feature_flag", "cohort", "person", "project", "query", "event_definition")
WILDCARD_SCOPE = "*"
VALID_SCOPES = frozenset([WILDCARD_SCOPE] + [f"{obj}:{level}" for obj in SCOPE_OBJECTS for level in ("read", "write")])


def validate_scopes(scopes: list[str]) -> None:
    unknown = sorted(set(scopes) - VALID_SCOPES)
    if unknown:
        raise ValidationError(
            f"Unknown scope(s): {', '.join(unknown)}. Valid scopes are: {', '.join(sorted(VALID_SCOPES))}."
        )


def scopes_grant(granted: list[str], required: str) -> bool:
    """A key with no scopes is a legacy key allowed everything; a write scope also grants the read scope."""
    if not granted or WILDCARD_SCOPE in granted:
        return True
    if required in granted:
        return True
    scope_object, _, level = required.partition(":")
    return level == "read" and f"{scope_object}:write" in granted
