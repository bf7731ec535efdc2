"""Django app configuration of persons."""

from django.apps import AppConfig


class PersonsConfig(AppConfig):
    name = "persons"
    default_auto_field = "django.db.models.BigAutoField"
