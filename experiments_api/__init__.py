"""Project package: settings, URLs, the Celery app and the cross-cutting API pieces."""

from experiments_api.celery import app as celery_app

__all__ = ["celery_app"]
