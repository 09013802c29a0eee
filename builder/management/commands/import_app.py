"""Create an app from a JSON document: ``manage.py import_app app.json [--workspace SLUG]``."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from builder.document import AppFileError, import_app
from builder.models import Widget
from workspaces.models import Workspace


class Command(BaseCommand):
    help = (
        "Create an app from a file written by export_app ('-' reads stdin). Passwords are "
        "read from the environment variables the file names."
    )
    # Lets tests pass call_command(..., stdin=StringIO(...)).
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("file", help="the app file, or - for stdin")
        parser.add_argument(
            "--workspace", help="the target workspace's slug (needed when there are several)"
        )

    def handle(self, *args, file: str, workspace: str | None, **options):
        target = self.workspace(workspace)
        document = self.read(file, options.get("stdin") or sys.stdin)
        try:
            app = import_app(document, target)
        except AppFileError as exc:
            raise CommandError(str(exc)) from None
        pages = app.pages.count()
        widgets = Widget.objects.filter(page__app=app).count()
        queries = app.queries.count()
        datasources = len({query.datasource_id for query in app.queries.all()})
        self.stdout.write(
            f"Imported app {app.slug} into workspace {target.slug}: {pages} page(s), "
            f"{widgets} widget(s), {queries} quer{'y' if queries == 1 else 'ies'}, "
            f"{datasources} datasource(s)."
        )

    def workspace(self, slug: str | None) -> Workspace:
        slugs = list(Workspace.objects.order_by("slug").values_list("slug", flat=True))
        if slug is not None:
            found = Workspace.objects.filter(slug=slug).first()
            if found is None:
                raise CommandError(
                    f"No workspace {slug!r}; choose one of: {', '.join(slugs) or '(none)'}."
                )
            return found
        if len(slugs) == 1:
            return Workspace.objects.get()
        if not slugs:
            raise CommandError("There is no workspace to import into; create one first.")
        raise CommandError(f"Choose a workspace with --workspace, one of: {', '.join(slugs)}.")

    def read(self, file: str, stdin) -> dict:
        name = "stdin" if file == "-" else file
        try:
            if file == "-":
                text = stdin.read()
            else:
                with open(file, encoding="utf-8") as handle:
                    text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {name}: {exc}") from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(
                f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            ) from None
