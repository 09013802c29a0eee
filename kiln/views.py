from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from builder.models import App, AppVersion
from workspaces.context_processors import current_slug
from workspaces.models import Membership, Role


@dataclass
class WorkspaceApps:
    """One workspace on the home page: the user's membership and the apps they may open."""

    membership: Membership
    apps: list[App] = field(default_factory=list)
    current: bool = False

    @property
    def can_edit(self) -> bool:
        return self.membership.allows(Role.EDITOR)

    @property
    def is_admin(self) -> bool:
        return self.membership.allows(Role.ADMIN)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Every workspace of the user with its apps: editors and admins see them all (edit,
    and open when published); viewers see only the published ones."""
    memberships = list(
        Membership.objects.filter(user=request.user)
        .select_related("workspace")
        .order_by("workspace__name")
    )
    current = current_slug(request)
    sections = {
        m.workspace_id: WorkspaceApps(m, current=m.workspace.slug == current) for m in memberships
    }
    latest = AppVersion.objects.filter(app=OuterRef("pk")).order_by("-number")
    apps = (
        App.objects.filter(workspace_id__in=sections)
        .annotate(version_number=Subquery(latest.values("number")[:1]))
        .order_by("name")
    )
    for app in apps:
        section = sections[app.workspace_id]
        if section.can_edit or app.version_number is not None:
            section.apps.append(app)
    ordered = sorted(sections.values(), key=lambda s: not s.current)
    return render(request, "builder/home.html", {"sections": ordered})


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})
