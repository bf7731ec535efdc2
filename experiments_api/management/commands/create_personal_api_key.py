"""Create (or reuse) a user, organization, project and membership, and print a new personal API key as JSON."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction

from experiments_api.services import member_with_project_ensure, personal_api_key_create


class Command(BaseCommand):
    help = (
        "Create a personal API key for a user (created if needed) in an organization and project "
        "(created if needed) and print one JSON line with the key; the key cannot be shown again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True, help="The user's email; the user is created if missing.")
        parser.add_argument("--organization", help="Organization name (reused if it exists).")
        parser.add_argument("--project", help="Project name within the organization (reused if it exists).")
        parser.add_argument(
            "--scopes",
            default="*",
            help='Comma-separated scopes, e.g. "experiment:read,experiment:write" (default "*").',
        )
        parser.add_argument("--label", default="", help="A label to recognise the key by.")

    def handle(
        self,
        *args,
        email: str,
        organization: str | None,
        project: str | None,
        scopes: str,
        label: str,
        **options,
    ):
        try:
            validate_email(email)
        except ValidationError as error:
            raise CommandError(f"--email: '{email}' is not a valid email address.") from error
        scope_list = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        if not scope_list:
            raise CommandError('--scopes must name at least one scope, e.g. "experiment:read" or "*".')
        for name, value in (("--organization", organization), ("--project", project)):
            if value is not None and not value.strip():
                raise CommandError(f"{name} must not be empty.")
        try:
            # One transaction, so a refused key leaves no user, organization or project behind.
            with transaction.atomic():
                user, project_obj = member_with_project_ensure(
                    email=email, organization_name=organization, project_name=project
                )
                _key, raw_value = personal_api_key_create(user=user, scopes=scope_list, label=label)
        except ValidationError as error:
            raise CommandError(f"--scopes: {error.messages[0]}") from error
        self.stdout.write(
            json.dumps(
                {
                    "key": raw_value,
                    "user_id": user.pk,
                    "organization_id": str(project_obj.organization_id),
                    "project_id": project_obj.pk,
                    "project_api_token": project_obj.api_token,
                }
            )
        )
