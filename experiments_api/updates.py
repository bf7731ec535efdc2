"""One helper that applies validated field changes to a model instance, for every service's update."""

from django.db import models


def model_update(*, instance: models.Model, changes: dict) -> models.Model:
    """Set each changed field and save the instance (every field, so `auto_now` timestamps move too)."""
    for field, value in changes.items():
        setattr(instance, field, value)
    instance.save()
    return instance
