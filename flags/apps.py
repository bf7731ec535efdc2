"""App config for the flags app."""

from django.apps import AppConfig


class FlagsConfig(AppConfig):
    name = "flags"
