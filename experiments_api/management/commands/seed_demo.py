"""Seed a demo organization, project, user and API key (printed) so a fresh server has something to show."""

import json

from django.core.management.base import BaseCommand

from experiments_api.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo organization, project and API key, plus demo data; safe to run more than once."

    def handle(self, *args, **options):
        summary = seed_demo()
        self.stdout.write(json.dumps(summary))
