from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from builder.jsonfield import OrderedJSONField
from builder.names import validate_identifier
from builder.schema import (
    KIND,
    STORED,
    VERSION,
    AppDocument,
    AppInfo,
    DatasourceDocument,
    PageDocument,
    QueryDocument,
    WidgetDocument,
)
from builder.tree import Tree
from datasources.models import Datasource
from datasources.plugins import get_plugin
from workspaces.models import Workspace
from workspaces.slugs import free_slug


class App(models.Model):
    """An internal app: pages of widgets, and the queries they run."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="apps")
    name = models.CharField(max_length=100)
    # Unique across Kiln, so that /apps/<slug>/ and the API need no workspace in the path.
    slug = models.SlugField(max_length=100, unique=True)
    #: Set by a workspace admin: the published app opens without signing in.
    public = models.BooleanField(default=False)
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

    def to_document(self) -> AppDocument:
        """The app as its document, with the datasources its queries use (no secrets)."""
        queries = list(self.queries.select_related("datasource").order_by("name", "id"))
        used = {query.datasource_id: query.datasource for query in queries}
        datasources = sorted(used.values(), key=lambda datasource: datasource.name)
        # Built from stored rows, which were checked when they were saved: not checked
        # again, so that a name a later release reserves cannot break an export.
        return AppDocument.model_construct(
            kiln=KIND,
            version=VERSION,
            app=AppInfo.model_construct(name=self.name, slug=self.slug),
            datasources=[datasource_document(datasource) for datasource in datasources],
            pages=[page.to_document() for page in self.pages.order_by("position", "id")],
            queries=[query.to_document() for query in queries],
        )


def datasource_document(datasource: Datasource) -> DatasourceDocument:
    """A datasource as an app file lists it: its settings without secrets."""
    try:
        hidden = set(get_plugin(datasource.kind).secret_fields)
    except LookupError:
        hidden = set()
    # The config holds no secret by design; leaving the secret fields out anyway means a
    # plugin that got this wrong still cannot leak one into a file.
    hidden.add("secret")
    config = {key: value for key, value in datasource.config.items() if key not in hidden}
    return DatasourceDocument.model_construct(
        name=datasource.name, kind=datasource.kind, config=config
    )


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
        widgets = {widget.pk: widget for widget in self.widgets.order_by("y", "x", "id")}
        tree = Tree((pk, widget.parent_id) for pk, widget in widgets.items())
        return [widgets[pk] for pk in tree.parents_first()]

    def to_document(self) -> PageDocument:
        return PageDocument.model_construct(
            name=self.name,
            slug=self.slug,
            position=self.position,
            widgets=self.widget_documents(),
        )

    def widget_documents(self) -> list[WidgetDocument]:
        """The widgets as documents, in layout order, each parent before its children."""
        ordered = self.widgets_in_order()
        names = {widget.pk: widget.name for widget in ordered}
        return [widget.to_document(names) for widget in ordered]

    def replace_widgets(self, widgets: list[WidgetDocument]) -> None:
        """Makes the page's widgets exactly ``widgets`` (parents first)."""
        self.widgets.all().delete()
        created: dict[str, Widget] = {}
        for item in widgets:
            widget = Widget.from_document(item, page=self, parent=created.get(item.parent or ""))
            widget.save()
            created[widget.name] = widget


class Widget(models.Model):
    """A widget on a page. Its name is what bindings use (``form1.data.email``)."""

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="widgets")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    name = models.CharField(max_length=64, validators=[validate_identifier])
    type = models.CharField(max_length=32)
    properties = OrderedJSONField(default=dict, blank=True)
    events = OrderedJSONField(default=dict, blank=True)
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

    def to_document(self, names: dict[int, str]) -> WidgetDocument:
        """The widget as a document; ``names`` maps the page's widget ids to names."""
        return WidgetDocument.model_construct(
            name=self.name,
            type=self.type,
            parent=None if self.parent_id is None else names.get(self.parent_id),
            properties=self.properties,
            events=self.events,
            x=self.x,
            y=self.y,
            w=self.w,
            h=self.h,
        )

    @classmethod
    def from_document(
        cls, document: WidgetDocument, *, page: Page, parent: Widget | None
    ) -> Widget:
        """An unsaved widget made from ``document``, in ``parent`` (a saved widget)."""
        return cls(
            page=page,
            parent=parent,
            name=document.name,
            type=document.type,
            properties=document.properties,
            events=document.events,
            x=document.x,
            y=document.y,
            w=document.w,
            h=document.h,
        )


class Query(models.Model):
    """What a widget event runs: an action of a datasource, with bound fields."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="queries")
    name = models.CharField(max_length=64, validators=[validate_identifier])
    datasource = models.ForeignKey(Datasource, on_delete=models.PROTECT, related_name="queries")
    #: One of the datasource plugin's actions; left blank, ``save`` makes it the plugin's
    #: first (a query knows no plugin's actions of its own).
    action = models.CharField(max_length=50, blank=True, default="")
    #: The action's fields as typed, with << >> bindings (e.g. {"to": "<< form1.data.email >>"}).
    fields = OrderedJSONField(default=dict, blank=True)
    run_on_page_load = models.BooleanField(default=False)
    confirm_before_run = models.BooleanField(default=False)
    #: What the confirmation dialog asks; blank: the viewer's own wording.
    confirm_message = models.CharField(max_length=200, blank=True, default="")
    timeout_seconds = models.PositiveIntegerField(default=60)
    #: When a run is sent, as text with << >> bindings (queries/schedule.py reads it);
    #: blank: at once.
    send_at = models.CharField(max_length=200, blank=True, default="")
    #: A mail merge: a binding that evaluates to a list (a Table's data, an uploaded CSV);
    #: the query then runs once per item, with ``row`` and ``index`` in scope. Blank: off.
    for_each = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "queries"
        constraints = [models.UniqueConstraint(fields=["app", "name"], name="query_name_unique")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.action:
            self.action = self.datasource.plugin.first_action
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "action"}
        super().save(*args, **kwargs)

    def to_document(self) -> QueryDocument:
        return QueryDocument.model_construct(
            name=self.name,
            datasource=self.datasource.name,
            action=self.action,
            fields=self.fields,
            run_on_page_load=self.run_on_page_load,
            confirm_before_run=self.confirm_before_run,
            confirm_message=self.confirm_message,
            timeout_seconds=self.timeout_seconds,
            send_at=self.send_at,
            for_each=self.for_each,
        )

    @classmethod
    def from_document(cls, document: QueryDocument, *, app: App, datasource: Datasource) -> Query:
        """An unsaved query made from ``document``; ``datasource`` is the one it names."""
        return cls(
            app=app,
            name=document.name,
            datasource=datasource,
            action=document.action,
            fields=document.fields,
            run_on_page_load=document.run_on_page_load,
            confirm_before_run=document.confirm_before_run,
            confirm_message=document.confirm_message,
            timeout_seconds=document.timeout_seconds,
            send_at=document.send_at,
            for_each=document.for_each,
        )


class AppVersion(models.Model):
    """A published version of an app: its document (the apps-as-code format), frozen.
    Viewers get the latest; editing the app changes nothing for them until the next
    publish."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    document = OrderedJSONField()
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["app", "number"], name="app_version_unique")]

    def __str__(self) -> str:
        return f"{self.app} v{self.number}"

    def app_document(self) -> AppDocument:
        """The published document, typed."""
        return AppDocument.model_validate(self.document, context=STORED)


class PageEdit(models.Model):
    """One change made in the page editor, for undo and redo: the page's widgets (each a
    dumped ``WidgetDocument``: name, type, parent name, properties, events, x, y, w, h)
    before and after it.

    Undo puts ``before`` back and marks the edit undone; redo puts ``after`` back. A new
    edit drops the undone ones (editor.canvas_history)."""

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="edits")
    created_at = models.DateTimeField(auto_now_add=True)
    summary = models.CharField(max_length=200, blank=True)
    before = OrderedJSONField(default=list)
    after = OrderedJSONField(default=list)
    undone = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["page", "undone", "id"], name="page_edit_history")]

    def __str__(self) -> str:
        return f"{self.page}: {self.summary or 'edit'}"
