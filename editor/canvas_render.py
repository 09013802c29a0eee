"""What the page editor draws: the canvas (every widget rendered as the preview renders
it, each in a selectable frame) and the property pane of the selected widget.

Bindings are evaluated as in the preview of the draft (viewer.runtime.PageRuntime with
the page's current rows); a binding that fails shows the widget's inline warning, and a
widget that cannot be drawn at all shows a box saying why: the editor never fails
because of what is on the page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.http import HttpRequest, QueryDict
from django.template.loader import render_to_string
from django.utils.datastructures import MultiValueDict
from django.utils.safestring import SafeString, mark_safe

from bindings import Attributes, check_names, is_incomplete
from bindings.namespace import CONTEXT_NAMES, CONTEXT_PATHS, QUERY_KEYS, names_in_scope
from builder.models import App, Page, Widget
from builder.schema import AppDocument, WidgetDocument
from builder.tree import Tree
from core.text import as_bool
from viewer.runtime import PageRuntime
from widgets import TYPES, Prop, RenderAttrs, WidgetSpec, get_type

from . import canvas_events
from .canvas_edits import as_text, size_of

log = logging.getLogger(__name__)

#: Names every binding can read besides widgets and queries (queries/context.py).
#: Extra rows below the last widget, to drop new widgets into.
SPARE_ROWS = 6
MIN_ROWS = 12


def icon(widget_type: str) -> SafeString:
    """The palette's icon of a widget type (templates/widgets/icons/<type>.svg)."""
    try:
        template = get_type(widget_type).icon_template
    except LookupError:
        template = "widgets/icons/default.svg"
    return render_to_string("editor/canvas/icon.html", {"icon": template})


def palette() -> list[dict]:
    """A tile per registered widget type."""
    tiles = []
    for name, widget_type in TYPES.items():
        w, h = size_of(name)
        tiles.append(
            {
                "type": name,
                "label": widget_type.label,
                "w": w,
                "h": h,
                "icon": icon(name),
                "container": widget_type.container,
            }
        )
    return tiles


# The canvas ------------------------------------------------------------------------------
@dataclass
class Grid:
    frames: list[SafeString]
    rows: int
    selected: str
    empty: bool


def render_grid(request: HttpRequest, app: App, page: Page, selected: str = "") -> Grid:
    page_document = page.to_document()
    names = {w.name for w in page_document.widgets}
    selected = selected if selected in names else ""
    document = AppDocument.model_construct(pages=[page_document], queries=[])
    runtime = PageRuntime(request, app, document, page.slug, preview=True)
    try:
        states = runtime.initial_states()
    except Exception:  # a widget of an unknown type: draw the rest without state
        log.exception("canvas: reading the initial state of %s failed", page)
        states = {}
    context = runtime.context(states)

    def frame(name: str, top: bool) -> SafeString:
        doc = runtime.widgets[name]
        children = [frame(child, False) for child in runtime.tree.children(name)]
        inner, hidden = _render_widget(runtime, name, context, children)
        try:
            widget_type = get_type(doc.type)
            label, container = widget_type.label, widget_type.container
        except LookupError:
            label, container = doc.type, False
        return render_to_string(
            "editor/canvas/frame.html",
            {
                "w": doc,
                "label": label,
                "container": container,
                "top": top,
                "hidden": hidden,
                "selected": name == selected,
                "inner": inner,
            },
        )

    top = runtime.tree.children(None)
    bottom = max((w.y + w.h for w in page_document.widgets if not w.parent), default=0)
    return Grid(
        frames=[frame(name, True) for name in top],
        rows=max(bottom + SPARE_ROWS, MIN_ROWS),
        selected=selected,
        empty=not page_document.widgets,
    )


def _render_widget(
    runtime: PageRuntime, name: str, context: dict, children: list[str]
) -> tuple[SafeString, bool]:
    """The widget's HTML as the preview draws it, and whether it is hidden (drawn anyway,
    dimmed: an editor must show what it edits)."""
    doc = runtime.widgets[name]
    try:
        widget_type = get_type(doc.type)
        props, errors = runtime.evaluate_props(name, context)
        hidden = "visible" not in errors and not as_bool(props.get("visible", True))
        if hidden:
            props = {**props, "visible": True}
        spec = WidgetSpec(name=name, type=doc.type, props=props)
        html = widget_type.render(
            spec,
            state=None,
            errors=[],
            prop_errors=errors,
            children_html=children,
            attrs=RenderAttrs(),
        )
        return html, hidden
    except Exception as exc:
        log.exception("canvas: drawing %s failed", name)
        message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, LookupError) else str(exc)
        html = render_to_string(
            "editor/canvas/broken.html",
            {"name": name, "message": message, "children_html": mark_safe("".join(children))},
        )
        return html, False


# Names for bindings ----------------------------------------------------------------------
@cache
def state_keys(widget_type: str) -> tuple[str, ...]:
    """What ``<name>.<key>`` a widget of this type offers (its state with defaults)."""
    try:
        kind = get_type(widget_type)
    except LookupError:
        return ()
    spec = WidgetSpec(name="w", type=widget_type, props=kind.props_with_defaults({}))
    try:
        return tuple(kind.read_state(spec, QueryDict(), MultiValueDict(), {}))
    except Exception:
        return ()


def attributes_of(
    widgets: Iterable[tuple[str, str]], queries: Iterable[str]
) -> dict[str, Attributes]:
    """What each widget (``(name, type)``) and query offers to ``<< name.key >>``, for the
    "did you mean" warnings. Widgets with no state are left out: nothing to compare."""
    found: dict[str, Attributes] = {}
    for name, widget_type in widgets:
        keys = state_keys(widget_type)
        if not keys:
            continue
        label = get_type(widget_type).label
        article = "an" if label[:1].lower() in "aeiou" else "a"
        found[name] = Attributes(f"{article} {label}", keys)
    for query in queries:
        found[query] = Attributes("a query", QUERY_KEYS)
    return found


def known_names(widgets: list[WidgetDocument], queries: list[str]) -> frozenset[str]:
    """Names a binding on this page may read."""
    return names_in_scope((w.name for w in widgets), queries)


def suggestions(widgets: list[WidgetDocument], queries: list[str]) -> list[str]:
    """Names and ``name.key`` paths offered while typing a binding."""
    out: list[str] = []
    by_name = {w.name: w for w in widgets}
    tree = Tree((w.name, w.parent) for w in widgets)

    def fields_of(name: str) -> list[str]:
        found = []
        for child in (by_name[key] for key in tree.children(name)):
            try:
                child_type = get_type(child.type)
            except LookupError:
                continue
            if child_type.container:
                found += fields_of(child.name)
            elif child_type.value_key:
                found.append(child.name)
        return found

    for w in widgets:
        out.append(w.name)
        out += [f"{w.name}.{key}" for key in state_keys(w.type)]
        if "data" in state_keys(w.type):
            out += [f"{w.name}.data.{child}" for child in fields_of(w.name)]
    for query in queries:
        out.append(query)
        out += [f"{query}.{key}" for key in QUERY_KEYS]
    out += [*CONTEXT_NAMES, *CONTEXT_PATHS]
    return out


# The property pane -------------------------------------------------------------------------
@dataclass
class Field:
    """One property as the pane draws it."""

    prop: Prop
    text: str
    checked: bool
    binding: bool  # a bool, number or select shown as text, to hold a << >> binding
    is_set: bool
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    # A << not closed yet: saved, and said to be incomplete rather than broken while typing.
    incomplete: bool = False

    @property
    def can_bind(self) -> bool:
        return self.prop.bindable and self.prop.kind in ("bool", "number", "select")

    @property
    def control(self) -> str:
        """Which control the template draws."""
        kind = self.prop.kind
        if self.binding:
            return "textarea" if kind in ("json", "list", "multiline") else "text"
        return {
            "text": "text",
            "multiline": "textarea",
            "number": "number",
            "bool": "checkbox",
            "select": "select",
            "json": "code",
            "list": "code",
        }[kind]


def make_field(
    widget: Widget | WidgetDocument,
    prop: Prop,
    known: frozenset[str],
    binding: bool | None = None,
    text: str | None = None,
    error: str = "",
    attributes: Mapping[str, Attributes] | None = None,
) -> Field:
    properties = widget.properties or {}
    name = widget.name
    is_set = prop.name in properties
    value = properties[prop.name] if is_set else prop.default_value()
    is_binding_text = isinstance(value, str) and "<<" in value
    if binding is None:
        binding = prop.kind in ("bool", "number", "select") and prop.bindable and is_binding_text
    shown = as_text(prop, value) if text is None else text
    warnings = []
    incomplete = False
    if prop.bindable and isinstance(value, str | list | dict) and not error:
        incomplete = is_incomplete(value)
        warnings = check_names(
            f"{name}.{prop.name}", value, known, skip_unclosed=True, attributes=attributes
        )
    return Field(
        prop=prop,
        text=shown,
        checked=as_bool(value) if prop.kind == "bool" and not is_binding_text else False,
        binding=binding,
        is_set=is_set,
        warnings=warnings,
        error=error,
        incomplete=incomplete,
    )


@dataclass
class PageScope:
    """The page's widgets and the app's queries and pages, read once per request."""

    widgets: list[WidgetDocument]
    queries: list[str]
    pages: list[tuple[str, str]]

    @classmethod
    def of(cls, app: App, page: Page) -> PageScope:
        return cls(
            widgets=page.widget_documents(),
            queries=list(app.queries.order_by("name").values_list("name", flat=True)),
            pages=list(app.pages.values_list("slug", "name")),
        )

    @property
    def known(self) -> frozenset[str]:
        return known_names(self.widgets, self.queries)

    @property
    def attributes(self) -> dict[str, Attributes]:
        return attributes_of(((w.name, w.type) for w in self.widgets), self.queries)

    def events_scope(self) -> canvas_events.Scope:
        return canvas_events.Scope(
            queries=tuple(self.queries),
            widgets=tuple(w.name for w in self.widgets),
            modals=tuple(w.name for w in self.widgets if _is_modal(w.type)),
            pages=tuple(self.pages),
            known_names=self.known,
        )


def pane_context(
    app: App, page: Page, widget: Widget | None, scope: PageScope | None = None, posted: Any = None
) -> dict[str, Any]:
    """What templates/editor/canvas/pane.html needs for ``widget`` (None: nothing selected)."""
    if widget is None:
        return {"app": app, "page": page, "widget": None}
    scope = scope or PageScope.of(app, page)
    known = scope.known
    try:
        widget_type = get_type(widget.type)
    except LookupError:
        widget_type = None
    attributes = scope.attributes
    fields = (
        [make_field(widget, prop, known, attributes=attributes) for prop in widget_type.props]
        if widget_type
        else []
    )
    event_names = widget_type.events if widget_type else ()
    events_scope = scope.events_scope()
    return {
        "app": app,
        "page": page,
        "widget": widget,
        "widget_type": widget_type,
        "fields": fields,
        "events": canvas_events.rows(widget.events or {}, event_names, events_scope, posted),
        "scope": events_scope,
        "actions": canvas_events.ACTIONS,
        "toast_kinds": canvas_events.TOAST_KINDS,
        "suggestions": suggestions(scope.widgets, scope.queries),
        "has_container_parent": widget.parent_id is not None,
    }


def _is_modal(widget_type: str) -> bool:
    try:
        return get_type(widget_type).is_modal
    except LookupError:
        return False
