"""App config for the experiments app."""

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
