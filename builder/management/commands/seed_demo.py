"""Creates the demo user, workspace and dev-mailbox datasource. Safe to run again."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from builder.demo import create_demo_app, ensure_devmailbox_datasource
from workspaces.models import Role, Workspace


class Command(BaseCommand):
    help = "Create the demo user, workspace, dev-mailbox datasource and app when missing."

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
        datasource, made = ensure_devmailbox_datasource(workspace)
        app = create_demo_app(workspace, datasource, user)
        state = "created" if created else "kept (password unchanged)"
        self.stdout.write(
            f"Demo user {username!r} {state}; workspace {workspace.slug!r}; "
            f"datasource {datasource.name!r} {'created' if made else 'kept'} -> "
            f"smtp://{datasource.config.get('host')}:{datasource.config.get('port')}; "
            f"app at /apps/{app.slug}/"
        )
