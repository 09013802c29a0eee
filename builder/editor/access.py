"""Who may edit: editors and admins of the app's workspace. Anyone outside it gets 404,
viewers 403 (they use the published app)."""

from __future__ import annotations

from django.http import Http404, HttpRequest

from builder.access import get_membership
from builder.models import App, Page, Role


def get_app_for_editor(request: HttpRequest, slug: str) -> App:
    app = App.objects.select_related("workspace").filter(slug=slug).first()
    if app is None:
        raise Http404("No such app")
    get_membership(request, app.workspace.slug, Role.EDITOR)
    return app


def get_page_for_editor(request: HttpRequest, slug: str, page: str) -> tuple[App, Page]:
    app = get_app_for_editor(request, slug)
    found = app.pages.filter(slug=page).first()
    if found is None:
        raise Http404("No such page")
    return app, found
