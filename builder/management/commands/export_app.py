"""Write an app as a JSON document: ``manage.py export_app APP_SLUG > app.json``."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from builder.document import export_app
from builder.models import App


class Command(BaseCommand):
    help = "Print an app (pages, widgets, queries, datasources without secrets) as JSON."

    def add_arguments(self, parser):
        parser.add_argument("app", help="the app's slug")

    def handle(self, *args, app: str, **options):
        found = App.objects.filter(slug=app).first()
        if found is None:
            raise CommandError(f"No app with the slug {app!r}.")
        self.stdout.write(json.dumps(export_app(found), indent=2, ensure_ascii=False))
