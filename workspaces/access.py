"""Who may reach what. Another workspace's object is a 404, never a 403."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from workspaces.models import Membership, Role, Workspace


def get_membership(request: HttpRequest, slug: str, role: Role = Role.VIEWER) -> Membership:
    """The signed-in user's membership of workspace ``slug``, which must allow ``role``.

    Non-members get 404; members below ``role`` get 403.
    """
    if not request.user.is_authenticated:
        raise Http404("No such workspace")
    membership = (
        Membership.objects.select_related("workspace")
        .filter(workspace__slug=slug, user_id=int(request.user.pk))
        .first()
    )
    if membership is None:
        raise Http404("No such workspace")
    if not membership.allows(role):
        raise PermissionDenied(f"This needs the {role.label.lower()} role in this workspace")
    return membership


def workspaces_of(user) -> list[Workspace]:
    return list(Workspace.objects.filter(memberships__user=user).order_by("name"))
