"""Send one email through a saved SMTP datasource, from the shell."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from datasources.errors import PluginError
from datasources.models import Datasource


class Command(BaseCommand):
    help = "Send a test email through a datasource: send_test_email WORKSPACE DATASOURCE --to A"

    def add_arguments(self, parser):
        parser.add_argument("workspace", help="the workspace's slug, e.g. demo")
        parser.add_argument("datasource", help="the datasource's name, e.g. 'Dev mailbox'")
        parser.add_argument("--to", required=True, help="comma-separated recipients")
        parser.add_argument("--from", dest="sender", default="kiln@kiln.test")
        parser.add_argument("--subject", default="Test email from Kiln")
        parser.add_argument("--body", default="It works: Kiln reached this SMTP server.")

    def handle(self, *args, workspace, datasource, to, sender, subject, body, **options):
        found = Datasource.objects.filter(workspace__slug=workspace, name=datasource).first()
        if found is None:
            raise CommandError(f"No datasource {datasource!r} in workspace {workspace!r}.")
        fields = {"from": sender, "to": to, "subject": subject, "body": body}
        try:
            result = found.plugin.run(found.settings(), "send_email", fields)
        except PluginError as exc:
            where = f" ({exc.field})" if exc.field else ""
            raise CommandError(f"Not sent{where}: {exc.message}") from None
        self.stdout.write(json.dumps(result.data))
