from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.text import slugify

from builder.names import validate_identifier


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
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="workspaces"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = _free_slug(Workspace, self.name)
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


def _free_slug(model, name: str, **scope) -> str:
    base = slugify(name)[:90] or model.__name__.lower()
    slug, n = base, 1
    while model.objects.filter(slug=slug, **scope).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


class App(models.Model):
    """An internal app: pages of widgets, and the queries they run."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="apps")
    name = models.CharField(max_length=100)
    # Unique across Kiln, so that /apps/<slug>/ and the API need no workspace in the path.
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = _free_slug(App, self.name)
        super().save(*args, **kwargs)


class Page(models.Model):
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="pages")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["app", "slug"], name="page_slug_unique")]

    def __str__(self) -> str:
        return f"{self.app} / {self.name}"

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = _free_slug(Page, self.name, app=self.app)
        super().save(*args, **kwargs)

    def widgets_in_order(self) -> list[Widget]:
        """The widgets in layout order, each parent before its children."""
        widgets = list(self.widgets.order_by("y", "x", "id"))
        known = {widget.pk for widget in widgets}
        children: dict[int | None, list[Widget]] = {}
        for widget in widgets:
            parent = widget.parent_id if widget.parent_id in known else None
            children.setdefault(parent, []).append(widget)
        ordered: list[Widget] = []
        pending = list(reversed(children.get(None, [])))
        while pending:
            widget = pending.pop()
            ordered.append(widget)
            pending.extend(reversed(children.get(widget.pk, [])))
        # Widgets caught in a parent cycle are unreachable from the roots: keep them last,
        # so that nothing is silently dropped.
        seen = {widget.pk for widget in ordered}
        return ordered + [widget for widget in widgets if widget.pk not in seen]


class Widget(models.Model):
    """A widget on a page. Its name is what bindings use (``form1.data.email``)."""

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="widgets")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    name = models.CharField(max_length=64, validators=[validate_identifier])
    type = models.CharField(max_length=32)
    properties = models.JSONField(default=dict, blank=True)
    events = models.JSONField(default=dict, blank=True)
    # Layout on the page's 12-column grid.
    x = models.PositiveSmallIntegerField(default=0)
    y = models.PositiveIntegerField(default=0)
    w = models.PositiveSmallIntegerField(default=4)
    h = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["y", "x", "id"]
        constraints = [models.UniqueConstraint(fields=["page", "name"], name="widget_name_unique")]

    def __str__(self) -> str:
        return self.name


class AppVersion(models.Model):
    """A published version of an app: its document (the apps-as-code format), frozen.
    Viewers get the latest; editing the app changes nothing for them until the next
    publish."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    document = models.JSONField()
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["app", "number"], name="app_version_unique")]

    def __str__(self) -> str:
        return f"{self.app} v{self.number}"


class PageEdit(models.Model):
    """One change made in the page editor, for undo and redo: the page's widgets (as
    dicts: name, type, parent name, properties, events, x, y, w, h) before and after it.

    Undo puts ``before`` back and marks the edit undone; redo puts ``after`` back. A new
    edit drops the undone ones (builder.editor.canvas_history)."""

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="edits")
    created_at = models.DateTimeField(auto_now_add=True)
    summary = models.CharField(max_length=200, blank=True)
    before = models.JSONField(default=list)
    after = models.JSONField(default=list)
    undone = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["page", "undone", "id"], name="page_edit_history")]

    def __str__(self) -> str:
        return f"{self.page}: {self.summary or 'edit'}"
