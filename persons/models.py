"""Persons as PostHog models them: a person owns distinct ids, carries properties and is identified by a merge.

A person's uuid is deterministic (uuid5 of "<project id>:<distinct id>" it was created with, PostHog's namespace),
so a person deleted and re-created from the same id gets the same uuid, and an event of an id without a person
(a personless event) carries the uuid that id's person would have. Events store the person uuid they were
ingested with; a merge leaves an override (old uuid → surviving uuid) that queries resolve until the squash job
rewrites the events (persons/services/squash.py).
"""

import uuid

from django.db import models
from django.utils import timezone

from experiments_api.models import Project
from persons.properties import MAX_DISTINCT_ID_LENGTH

PERSON_UUID_NAMESPACE = uuid.UUID("932979b4-65c3-4424-8467-0b66ec27bc22")


def person_uuid(project_id: int, distinct_id: str) -> uuid.UUID:
    """The uuid of the person created from `distinct_id`, and of that id's personless events."""
    return uuid.uuid5(PERSON_UUID_NAMESPACE, f"{project_id}:{distinct_id}")


class Person(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    uuid = models.UUIDField()
    properties = models.JSONField(default=dict)
    is_identified = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    # +1 per update; a merge gives max(a, b) + 1.
    version = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "uuid"], name="unique_person_uuid_per_project")]
        indexes = [models.Index(fields=["project", "-created_at"], name="person_project_created")]

    def __str__(self) -> str:
        return str(self.uuid)


class PersonDistinctId(models.Model):
    """A distinct id and the person it belongs to. `version` 0: the id's events carry this person's uuid; ≥ 1: the
    id moved here in a merge (or was first seen personless), so its older events may carry another uuid."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="distinct_ids")
    distinct_id = models.CharField(max_length=MAX_DISTINCT_ID_LENGTH)
    version = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "distinct_id"], name="unique_distinct_id_per_project")
        ]

    def __str__(self) -> str:
        return self.distinct_id


class PersonlessDistinctId(models.Model):
    """A distinct id seen on events sent with `$process_person_profile: false`, whose events carry the id's own
    deterministic uuid; `is_merged` once the id joined a person (its events then need an override)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    distinct_id = models.CharField(max_length=MAX_DISTINCT_ID_LENGTH)
    is_merged = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "distinct_id"], name="unique_personless_distinct_id")]


class PersonOverride(models.Model):
    """Events carrying `old_person_id` belong to `new_person_id`: written by merges, read by every metric query
    (a small table, joined by uuid), cleared by the squash job once those events are rewritten."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    old_person_id = models.UUIDField()
    new_person_id = models.UUIDField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "old_person_id"], name="unique_person_override_per_project")
        ]
        indexes = [models.Index(fields=["project", "new_person_id"], name="person_override_new")]


class FeatureFlagHashKeyOverride(models.Model):
    """Experience continuity: the hash key (the anonymous distinct id) a person's flag is bucketed on."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="hash_key_overrides")
    feature_flag_key = models.CharField(max_length=400)
    hash_key = models.CharField(max_length=MAX_DISTINCT_ID_LENGTH)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "person", "feature_flag_key"], name="unique_hash_key_override_per_person"
            )
        ]


class CohortPerson(models.Model):
    """A person in a cohort: the members of a static cohort, or of a dynamic one as of its last calculation."""

    cohort = models.ForeignKey("flags.Cohort", on_delete=models.CASCADE, related_name="memberships")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="cohort_memberships")
    # The cohort calculation that last confirmed the membership (dynamic cohorts).
    version = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cohort", "person"], name="unique_cohort_person")]
