"""App config for the events app."""

from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
