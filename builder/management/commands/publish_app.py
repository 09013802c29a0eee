from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from builder.models import App
from builder.publishing import publish


class Command(BaseCommand):
    help = "Publish the current version of an app: publish_app APP_SLUG"

    def add_arguments(self, parser):
        parser.add_argument("app")

    def handle(self, *args, app: str, **options):
        found = App.objects.filter(slug=app).first()
        if found is None:
            raise CommandError(f"No app with slug {app!r}.")
        version = publish(found)
        self.stdout.write(f"Published {found.slug} as version {version.number}.")
