"""Who may reach an app. Another workspace's app is a 404, never a 403."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest

from builder.models import App, Page
from workspaces.access import get_membership
from workspaces.models import Role


def get_app_for_editor(request: HttpRequest, slug: str) -> App:
    """The app, for its workspace's editors and admins; viewers get 403, others 404."""
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


def get_app_for_member(request: HttpRequest, slug: str) -> App:
    """The app, for any member of its workspace (any role); everyone else gets 404."""
    app = (
        App.objects.select_related("workspace")
        .filter(slug=slug, workspace__memberships__user_id=request.user.pk)
        .first()
    )
    if app is None:
        raise Http404("No such app")
    return app


def get_app_for_visitor(request: HttpRequest, slug: str, apps: QuerySet[App] | None = None) -> App:
    """The app, for any member of its workspace, or for anyone at all when it is public
    (signed in or not); everyone else gets 404. ``apps``: where to look (an annotated
    queryset of the caller's), all apps by default."""
    allowed = Q(public=True)
    if request.user.is_authenticated:
        # Only for a signed-in user: with no user, the join would match workspaces
        # that have no members at all.
        allowed |= Q(workspace__memberships__user_id=request.user.pk)
    apps = App.objects.all() if apps is None else apps
    app = apps.select_related("workspace").filter(allowed, slug=slug).first()
    if app is None:
        raise Http404("No such app")
    return app


def is_public(slug: str) -> bool:
    return App.objects.filter(slug=slug, public=True).exists()
