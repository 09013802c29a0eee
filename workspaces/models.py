"""Workspaces: a team's space, its members and their roles, and its files."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from workspaces.slugs import free_slug


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


# What each role may do includes what the roles below it may do.
ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


class Workspace(models.Model):
    """A team's space: every app, datasource and file belongs to one."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members: models.ManyToManyField = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="workspaces"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = free_slug(Workspace, self.name)
        super().save(*args, **kwargs)

    def role_of(self, user) -> Role | None:
        if not user.is_authenticated:
            return None
        membership = self.memberships.filter(user=user).first()
        return Role(membership.role) if membership else None

    def add_member(self, user, role: Role) -> Membership:
        membership, _ = Membership.objects.update_or_create(
            workspace=self, user=user, defaults={"role": role}
        )
        return membership


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    def allows(self, role: Role) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[role]


def workspace_file_path(instance: WorkspaceFile, filename: str) -> str:
    return f"workspaces/{instance.workspace_id}/files/{filename}"


class WorkspaceFile(models.Model):
    """A file uploaded into Kiln; queries refer to it by id, never by a server path."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="files")
    file = models.FileField(upload_to=workspace_file_path, max_length=500)
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    def __str__(self) -> str:
        return self.name

    def as_reference(self) -> dict:
        """The shape a binding sees, and that the SMTP plugin takes as an attachment."""
        return {"id": self.pk, "name": self.name, "type": self.content_type, "size": self.size}


INVITATION_DAYS = 7


def hash_token(token: str) -> str:
    """What is stored of an invitation token: its SHA-256, so a leaked table row opens
    nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


class Invitation(models.Model):
    """An invitation into a workspace with a role, opened through a one-use secret link.

    Only the token's hash is stored; the link is shown once, to the admin who made it,
    and sent by email."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(blank=True)
    # Set when the admin invited an existing account by its username: then only that
    # account may accept.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="invitations",
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.invitee} to {self.workspace} ({self.role})"

    @property
    def invitee(self) -> str:
        return self.user.get_username() if self.user else self.email

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and not self.is_expired

    @classmethod
    def start(cls, workspace: Workspace, role: Role, invited_by, **who) -> tuple[Invitation, str]:
        """A new invitation and its token (the only time the token exists in clear)."""
        token = secrets.token_urlsafe(32)
        invitation = cls.objects.create(
            workspace=workspace,
            role=role,
            invited_by=invited_by,
            token_hash=hash_token(token),
            expires_at=timezone.now() + timedelta(days=INVITATION_DAYS),
            **who,
        )
        return invitation, token

    @classmethod
    def find(cls, token: str) -> Invitation | None:
        return (
            cls.objects.select_related("workspace", "user", "invited_by")
            .filter(token_hash=hash_token(token))
            .first()
        )


# The audit log's model lives in its own module; importing it here registers it.
from workspaces.audit import AuditEvent  # noqa: E402, F401
