"""The audit log: who did what to which thing of a workspace, when and from where.

Every layer records through :func:`record`; admins read the log on the workspace's
audit page (workspaces/audit_views.py). Entries are never edited; they go when their
workspace goes.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.http import HttpRequest


class Action(models.TextChoices):
    CREATED = "created", "Created"
    CHANGED = "changed", "Changed"
    DELETED = "deleted", "Deleted"
    PUBLISHED = "published", "Published"
    RAN = "ran", "Ran"
    INVITED = "invited", "Invited"
    JOINED = "joined", "Joined"
    ROLE_CHANGED = "role_changed", "Changed the role of"
    REMOVED = "removed", "Removed"
    IMPORTED = "imported", "Imported"
    CANCELLED = "cancelled", "Cancelled"
    RESENT = "resent", "Sent again"


class AuditEvent(models.Model):
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    #: The actor's username when it happened (kept if the account goes), or
    #: "anonymous visitor" / "API token …" / "system".
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=20, choices=Action.choices)
    #: What was acted on: "app", "page", "query", "datasource", "member", "invitation", ...
    target_type = models.CharField(max_length=30)
    target_label = models.CharField(max_length=200)
    detail = models.JSONField(default=dict, blank=True)
    #: Where from: the client's address as Kiln saw it (see KILN_TRUSTED_PROXY_COUNT).
    address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "workspaces"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="audit_by_time")]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.get_action_display().lower()} {self.target_label}"


def client_address(request: HttpRequest | None) -> str | None:
    """The client's address: REMOTE_ADDR, or with KILN_TRUSTED_PROXY_COUNT proxies in front
    of Kiln, the address the nearest trusted proxy saw (X-Forwarded-For can be forged by
    the client, so only the proxies' own entries are believed)."""
    if request is None:
        return None
    proxies = getattr(settings, "KILN_TRUSTED_PROXY_COUNT", 0)
    if proxies:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= proxies:
            return hops[-proxies] or None
    return request.META.get("REMOTE_ADDR") or None


def record(
    workspace: Any,
    action: str,
    target_type: str,
    target_label: str,
    *,
    request: HttpRequest | None = None,
    actor: Any = None,
    actor_label: str = "",
    detail: dict | None = None,
) -> AuditEvent:
    """Adds one entry. The actor is ``actor``, else the request's signed-in user, else
    an anonymous visitor (or "system" without a request)."""
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    if not actor_label:
        if actor is not None:
            actor_label = actor.get_username()
        else:
            actor_label = "anonymous visitor" if request is not None else "system"
    return AuditEvent.objects.create(
        workspace=workspace,
        actor=actor,
        actor_label=actor_label[:150],
        action=action,
        target_type=target_type,
        target_label=str(target_label)[:200],
        detail=detail or {},
        address=client_address(request),
    )
