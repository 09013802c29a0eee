"""Workspaces: a team's space, its members and their roles, and its files."""

from __future__ import annotations

from django.conf import settings
from django.db import models

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


# The audit log's model lives in its own module; importing it here registers it.
from workspaces.audit import AuditEvent  # noqa: E402, F401
