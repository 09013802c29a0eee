"""The workspace switcher's data, for the header of every page."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from workspaces.access import workspaces_of

SESSION_KEY = "kiln_workspace"


def current_slug(request: HttpRequest) -> str:
    """The workspace in the URL (``/w/<slug>/...``), else the one last switched to."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.kwargs.get("workspace"):
        return str(match.kwargs["workspace"])
    return str(request.session.get(SESSION_KEY, "")) if hasattr(request, "session") else ""


def workspaces(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # Lazy: a page that draws no header (an htmx fragment) makes no query for it.
    return {
        "switcher_workspaces": SimpleLazyObject(lambda: workspaces_of(user)),
        "current_workspace_slug": current_slug(request),
    }
