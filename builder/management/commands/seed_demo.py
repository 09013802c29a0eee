"""Creates the demo user, workspace and dev-mailbox datasource. Safe to run again."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from builder.demo import create_demo_app
from datasources.models import Datasource
from workspaces.models import Role, Workspace


class Command(BaseCommand):
    help = "Create (or refresh) the demo user, workspace and dev-mailbox datasource."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="kiln-demo")

    @transaction.atomic
    def handle(self, *args, username: str, password: str, **options):
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"email": f"{username}@kiln.test"}
        )
        if created:
            user.set_password(password)
        # Staff, so that the dev mailbox pages are visible to the demo user.
        user.is_staff = True
        user.save()
        workspace = Workspace.objects.filter(slug="demo").first() or Workspace.objects.create(
            name="Demo workspace", slug="demo"
        )
        workspace.add_member(user, Role.ADMIN)
        datasource, _ = Datasource.objects.update_or_create(
            workspace=workspace,
            name="Dev mailbox",
            defaults={
                "kind": "smtp",
                "config": {
                    "host": settings.KILN_DEVMAILBOX_HOST,
                    "port": settings.KILN_DEVMAILBOX_PORT,
                    "security": "none",
                    "auth": "none",
                    "username": "",
                    "timeout": 10,
                    "verify_certificate": True,
                },
                "secret": "",
            },
        )
        app = create_demo_app(workspace, datasource, user)
        state = "created" if created else "kept (password unchanged)"
        self.stdout.write(
            f"Demo user {username!r} {state}; workspace {workspace.slug!r}; "
            f"datasource 'Dev mailbox' -> smtp://{settings.KILN_DEVMAILBOX_HOST}:"
            f"{settings.KILN_DEVMAILBOX_PORT}; app at /apps/{app.slug}/"
        )
