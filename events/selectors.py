"""Reads over the event store and the lookups the SDK endpoints need (project by token, flags to evaluate)."""

import time
from datetime import datetime

from events.models import Event, EventDefinition
from experiments_api.models import Project
from flags.cache import project_flag_definitions
from flags.models import FeatureFlag

FEATURE_PROPERTY_PREFIX = "$feature/"
# Property blobs sampled per event name, as PostHog's requires_flag_implementation does.
FEATURE_PROPERTY_SAMPLE_SIZE = 20
PROJECT_CACHE_SECONDS = 10
PROJECT_CACHE_MAX_ENTRIES = 10_000
_projects_by_token: dict[str, tuple[float, Project]] = {}
SDK_FLAG_FIELDS = ("id", "key", "name", "filters", "active", "deleted", "version", "ensure_experience_continuity")


def events_carry_feature_flag_properties(*, project: Project, event_names: list[str], since: datetime) -> bool:
    """True when a sample of the latest events of these names since `since` (up to 20 per name) has at least one
    property blob with a `$feature/…` key, i.e. the application already reports its flags on these events."""
    for name in dict.fromkeys(event_names):
        samples = (
            Event.objects.filter(project=project, event=name, timestamp__gte=since)
            .order_by("-timestamp")
            .values_list("properties", flat=True)[:FEATURE_PROPERTY_SAMPLE_SIZE]
        )
        for properties in samples:
            if isinstance(properties, dict) and any(key.startswith(FEATURE_PROPERTY_PREFIX) for key in properties):
                return True
    return False


def unknown_event_names(*, project: Project, names: list[str]) -> list[str]:
    """The names (sorted, once each) that no event of the project has carried."""
    known = set(EventDefinition.objects.filter(project=project, name__in=names).values_list("name", flat=True))
    return sorted(set(names) - known)


def project_for_api_token(token: str) -> Project | None:
    """The project of a project token. Every capture and flags request asks, so found projects are kept in this
    process for PROJECT_CACHE_SECONDS: a rotated token or deleted project is noticed that much later."""
    if not token or not token.isascii() or "\x00" in token:  # no token we issue looks like that
        return None
    now = time.monotonic()
    cached = _projects_by_token.get(token)
    if cached is not None and cached[0] > now:
        return cached[1]
    project = Project.objects.filter(api_token=token).first()
    if project is not None:
        if len(_projects_by_token) >= PROJECT_CACHE_MAX_ENTRIES:
            _projects_by_token.clear()
        _projects_by_token[token] = (now + PROJECT_CACHE_SECONDS, project)
    return project


def flags_for_sdk(*, project: Project, include_inactive: bool = False) -> list[dict]:
    """The project's live flags as plain dicts, the input of flags.evaluation; inactive ones only on request
    (local evaluation lists them so SDKs know they are off). Served from flags.cache: do not mutate them."""
    flags = project_flag_definitions(project.pk, load=lambda: _live_flags(project))
    return flags if include_inactive else [flag for flag in flags if flag["active"]]


def _live_flags(project: Project) -> list[dict]:
    return list(FeatureFlag.objects.alive().filter(project=project).order_by("id").values(*SDK_FLAG_FIELDS))
