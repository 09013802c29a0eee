from __future__ import annotations

from django.conf import settings
from django.db import models

from builder.names import validate_identifier
from datasources.models import Datasource
from workspaces.models import Workspace
from workspaces.slugs import free_slug


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
            self.slug = free_slug(App, self.name)
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
            self.slug = free_slug(Page, self.name, app=self.app)
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


class Query(models.Model):
    """What a widget event runs: an action of a datasource, with bound fields."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="queries")
    name = models.CharField(max_length=64, validators=[validate_identifier])
    datasource = models.ForeignKey(Datasource, on_delete=models.PROTECT, related_name="queries")
    action = models.CharField(max_length=50, default="send_email")
    #: The action's fields as typed, with << >> bindings (e.g. {"to": "<< form1.data.email >>"}).
    fields = models.JSONField(default=dict, blank=True)
    run_on_page_load = models.BooleanField(default=False)
    confirm_before_run = models.BooleanField(default=False)
    timeout_seconds = models.PositiveIntegerField(default=60)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "queries"
        constraints = [models.UniqueConstraint(fields=["app", "name"], name="query_name_unique")]

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
