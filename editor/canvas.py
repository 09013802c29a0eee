"""The page editor: the canvas of one page, its palette, and the property pane.

Every change is saved by its own request and recorded as one edit for undo/redo
(canvas_history); the response re-renders the canvas from the stored rows, so what the
builder sees is what is stored. Widgets are addressed by name (their ids change when an
undo recreates them). Editors and admins only: another workspace gets 404, viewers 403.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget
from django_htmx.middleware import HtmxDetails
from pydantic import ValidationError

from builder.access import get_page_for_editor
from builder.models import App, Page, Widget
from builder.schema import WidgetDocument
from widgets import WidgetType, get_type

from . import canvas_edits as edits
from . import canvas_events as chains
from . import canvas_history, renames
from .canvas_render import PageScope, make_field, palette, pane_context, render_grid

CLIPBOARD = "kiln_canvas_clipboard"

STALE_WIDGET = "This widget changed meanwhile (undone in another tab?): reload the canvas."


def _record(request: HttpRequest, page: Page, summary: str, change, *, merge: bool = False):
    """One edit of the page, in its undo history and the audit log. A widget replaced
    meanwhile (an undo or redo in another tab gives the page new rows) is a 404 that says
    so, never a 500."""
    try:
        return canvas_history.record(page, summary, change, request=request, merge=merge)
    except DatabaseError as exc:
        # Django's words when a save(update_fields=...) finds its row gone.
        if "did not affect any rows" not in str(exc):
            raise
        raise Http404(STALE_WIDGET) from None


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


# Helpers ---------------------------------------------------------------------------------
def _widget(page: Page, name: str) -> Widget:
    widget = page.widgets.filter(name=name).first()
    if widget is None:
        raise Http404("No such widget")
    widget.page = page
    return widget


def _type(widget: Widget) -> WidgetType:
    try:
        return get_type(widget.type)
    except LookupError:
        raise Http404("This widget's type is not installed") from None


def _urls(app: App, page: Page) -> dict[str, str]:
    args = [app.slug, page.slug]
    names = ("add", "paste", "undo", "redo")
    urls = {name: reverse(f"editor:canvas_{name}", args=args) for name in names}
    widget = reverse("editor:canvas_widget", args=[*args, "__name__"])
    urls["widget"] = widget  # + "layout", "delete", "copy"
    return urls


def _history(page: Page) -> dict:
    return {"undo": canvas_history.next_undo(page), "redo": canvas_history.next_redo(page)}


def _refused(message: str, html: str = "", status: int = 422) -> HttpResponse:
    """A change that was not stored: the message goes under the field (422 responses are
    swapped by canvas.js) and into the save status (X-Kiln-Error)."""
    response = HttpResponse(html, status=status)
    response["X-Kiln-Error"] = quote(message)
    return response


def _canvas(request: HtmxHttpRequest, app: App, page: Page, selected: str, *, pane: bool) -> str:
    """The grid, and out of band the undo/redo buttons and (when asked) the pane."""
    grid = render_grid(request, app, page, selected)
    context = {"app": app, "page": page, "grid": grid, "history": _history(page), "oob": True}
    html = render_to_string("editor/canvas/page.html#grid", context, request)
    html += render_to_string("editor/canvas/page.html#history", context, request)
    if pane:
        widget = page.widgets.filter(name=grid.selected).first() if grid.selected else None
        pane_ctx = {**pane_context(app, page, widget), "oob": True}
        html += render_to_string("editor/canvas/pane.html", pane_ctx, request)
    return html


def _changed(request, app, page, selected: str, *, pane: bool = True) -> HttpResponse:
    return HttpResponse(_canvas(request, app, page, selected, pane=pane))


# The page --------------------------------------------------------------------------------
@login_required
@require_GET
def canvas(request: HtmxHttpRequest, app: str, page: str) -> HttpResponse:
    found, page_obj = get_page_for_editor(request, app, page)
    selected = request.GET.get("w", "")
    grid = render_grid(request, found, page_obj, selected)
    widget = page_obj.widgets.filter(name=grid.selected).first() if grid.selected else None
    context = {
        "app": found,
        "page": page_obj,
        "section": "canvas",
        "palette": palette(),
        "grid": grid,
        "history": _history(page_obj),
        "urls": _urls(found, page_obj),
        **pane_context(found, page_obj, widget),  # the pane is drawn with the page
    }
    return render(request, "editor/canvas/page.html", context)


@login_required
@require_GET
def canvas_widget(request: HtmxHttpRequest, app: str, page: str, name: str) -> HttpResponse:
    """Selecting a widget: its property pane."""
    found, page_obj = get_page_for_editor(request, app, page)
    widget = _widget(page_obj, name)
    return render(request, "editor/canvas/pane.html", pane_context(found, page_obj, widget))


# Changes ---------------------------------------------------------------------------------
@login_required
@require_POST
def canvas_add(request: HtmxHttpRequest, app: str, page: str) -> HttpResponse:
    found, page_obj = get_page_for_editor(request, app, page)
    kind = request.POST.get("type", "")
    try:
        x = edits.whole_number(request.POST, "x") or 0
        y = edits.whole_number(request.POST, "y")
        if y is None:  # no position (a tile clicked, not dropped): below everything
            y = max((w.y + w.h for w in page_obj.widgets.filter(parent=None)), default=0)
        parent = request.POST.get("parent", "")
        widget = _record(
            request, page_obj, f"Add {kind}", lambda: edits.add_widget(page_obj, kind, x, y, parent)
        )
    except edits.EditError as exc:
        return _refused(str(exc), status=400)
    return _changed(request, found, page_obj, widget.name)


@login_required
@require_POST
def canvas_layout(request: HtmxHttpRequest, app: str, page: str, name: str) -> HttpResponse:
    """Move (x, y, and optionally parent) and resize (w, h)."""
    found, page_obj = get_page_for_editor(request, app, page)
    widget = _widget(page_obj, name)
    try:
        _record(request, page_obj, f"Move {name}", lambda: edits.move(widget, request.POST))
    except edits.EditError as exc:
        return _refused(str(exc), status=400)
    return _changed(request, found, page_obj, request.POST.get("selected", name), pane=False)


@login_required
@require_POST
def canvas_delete(request: HtmxHttpRequest, app: str, page: str, name: str) -> HttpResponse:
    found, page_obj = get_page_for_editor(request, app, page)
    widget = _widget(page_obj, name)
    _record(request, page_obj, f"Delete {name}", lambda: edits.delete(widget))
    return _changed(request, found, page_obj, "")


@login_required
@require_POST
def canvas_copy(request: HtmxHttpRequest, app: str, page: str, name: str) -> HttpResponse:
    """Puts the widget (with what is inside it) on the clipboard of this session."""
    found, page_obj = get_page_for_editor(request, app, page)
    _widget(page_obj, name)
    items = edits.subtree(page_obj.widget_documents(), name)
    request.session[CLIPBOARD] = {
        "workspace": found.workspace_id,
        "page": page_obj.pk,
        "items": [item.model_dump(mode="json") for item in items],
    }
    return HttpResponse(status=204)


@login_required
@require_POST
def canvas_paste(request: HtmxHttpRequest, app: str, page: str) -> HttpResponse:
    """A copy of the clipboard's widget with a fresh name: into the selected container,
    else beside the original, offset below it."""
    found, page_obj = get_page_for_editor(request, app, page)
    clip = request.session.get(CLIPBOARD) or {}
    stored = clip.get("items") if clip.get("workspace") == found.workspace_id else None
    try:
        items = [WidgetDocument.model_validate(item) for item in stored or []]
    except ValidationError:
        # An unreadable clipboard (say, from an older release) is an empty one, not a 500.
        items = []
    if not items:
        return _refused("Nothing to paste: copy a widget first.", status=400)
    selected = page_obj.widgets.filter(name=request.POST.get("selected", "")).first()
    into = ""
    if selected and selected.name != items[0].name:
        try:
            into = selected.name if get_type(selected.type).container else ""
        except LookupError:
            into = ""
    same_page = clip.get("page") == page_obj.pk
    try:
        widget = _record(
            request,
            page_obj,
            f"Paste {items[0].name}",
            lambda: edits.paste(page_obj, items, into=into, same_page=same_page),
        )
    except edits.EditError as exc:
        return _refused(str(exc), status=400)
    return _changed(request, found, page_obj, widget.name)


@login_required
@require_POST
def canvas_undo(request: HtmxHttpRequest, app: str, page: str) -> HttpResponse:
    found, page_obj = get_page_for_editor(request, app, page)
    canvas_history.undo(page_obj)
    return _changed(request, found, page_obj, request.POST.get("selected", ""))


@login_required
@require_POST
def canvas_redo(request: HtmxHttpRequest, app: str, page: str) -> HttpResponse:
    found, page_obj = get_page_for_editor(request, app, page)
    canvas_history.redo(page_obj)
    return _changed(request, found, page_obj, request.POST.get("selected", ""))


# The property pane -------------------------------------------------------------------------
def _field_html(request, app, page, widget, field, *, oob_canvas: bool) -> str:
    context = {"app": app, "page": page, "widget": widget, "field": field}
    html = render_to_string("editor/canvas/pane.html#messages", context, request)
    if oob_canvas:
        html += _canvas(request, app, page, widget.name, pane=False)
    return html


@login_required
@require_POST
def canvas_property(request: HtmxHttpRequest, app: str, page: str, name: str) -> HttpResponse:
    """Saves one property as typed; answers with the messages under its field (binding
    warnings, or why it was not saved) and, out of band, the canvas."""
    found, page_obj = get_page_for_editor(request, app, page)
    widget = _widget(page_obj, name)
    prop = _type(widget).prop(request.POST.get("prop", ""))
    if prop is None:
        return _refused("This widget has no such property.", status=400)
    raw = request.POST.get("value")
    try:
        cleaned = edits.clean_property(prop, raw)
    except edits.EditError as exc:
        scope = PageScope.of(found, page_obj)
        field = make_field(
            widget, prop, scope.known, text=raw, error=str(exc), attributes=scope.attributes
        )
        return _refused(
            str(exc), _field_html(request, found, page_obj, widget, field, oob_canvas=False)
        )
    _record(
        request,
        page_obj,
        f"Set {name}.{prop.name}",
        lambda: edits.set_property(widget, prop, cleaned),
        # The first save after the field gains focus starts a new undo step (canvas.js).
        merge=request.POST.get("fresh") != "1",
    )
    scope = PageScope.of(found, page_obj)
    field = make_field(widget, prop, scope.known, attributes=scope.attributes)
    return HttpResponse(_field_html(request, found, page_obj, widget, field, oob_canvas=True))


@login_required
@require_GET
def canvas_field(
    request: HtmxHttpRequest, app: str, page: str, name: str, prop: str
) -> HttpResponse:
    """One property's field, as a plain control or (``binding=1``) as text for a binding."""
    found, page_obj = get_page_for_editor(request, app, page)
    widget = _widget(page_obj, name)
    found_prop = _type(widget).prop(prop)
    if found_prop is None:
        raise Http404("No such property")
    binding = request.GET.get("binding") == "1"
    scope = PageScope.of(found, page_obj)
    field = make_field(
        widget, found_prop, scope.known, binding=binding, attributes=scope.attributes
    )
    context = {"app": found, "page": page_obj, "widget": widget, "field": field}
    return render(request, "editor/canvas/pane.html#field", context)


def _rename(page: Page, widget: Widget, new_name: str) -> None:
    old = widget.name
    edits.rename(widget, new_name)
    if widget.name != old:
        renames.widget_renamed(page, old, widget.name)
        widget.refresh_from_db()


@login_required
@require_POST
def canvas_rename(request: HtmxHttpRequest, app: str, page: str, name: str) -> HttpResponse:
    found, page_obj = get_page_for_editor(request, app, page)
    widget = _widget(page_obj, name)
    new_name = (request.POST.get("name") or "").strip()
    try:
        _record(
            request,
            page_obj,
            f"Rename {name} to {new_name}",
            lambda: _rename(page_obj, widget, new_name),
        )
    except edits.EditError as exc:
        html = render_to_string(
            "editor/canvas/pane.html#name_messages", {"name_error": str(exc)}, request
        )
        return _refused(str(exc), html)
    html = render_to_string(
        "editor/canvas/pane.html", pane_context(found, page_obj, widget), request
    )
    html += _canvas(request, found, page_obj, widget.name, pane=False)
    response = HttpResponse(html)
    return reswap(retarget(response, "#cv-pane"), "outerHTML")


@login_required
@require_POST
def canvas_events(request: HtmxHttpRequest, app: str, page: str, name: str) -> HttpResponse:
    """Saves the widget's events: the pane's form (paths as field names, ``add:<list>`` to
    append an action, ``op=remove:<action>`` to drop one), or ``events_json``, a document
    in the format of docs/events.md."""
    found, page_obj = get_page_for_editor(request, app, page)
    widget = _widget(page_obj, name)
    widget_type = _type(widget)
    scope = PageScope.of(found, page_obj)
    old = widget.events or {}
    try:
        if "events_json" in request.POST:
            try:
                document = json.loads(request.POST["events_json"] or "{}")
            except ValueError as exc:
                raise edits.EditError(f"Events: not valid JSON: {exc}.", "events") from None
            events = chains.normalize_events(document, widget_type.events)
        else:
            events = chains.from_form(request.POST, widget_type.events, old, scope.events_scope())
    except edits.EditError as exc:
        return _refused(str(exc), status=400)

    def save() -> None:
        widget.events = events
        widget.save(update_fields=["events"])

    _record(request, page_obj, f"Edit events of {name}", save)
    context = {**pane_context(found, page_obj, widget, scope, posted=request.POST), "oob": True}
    history = render_to_string(
        "editor/canvas/page.html#history", {"history": _history(page_obj), "oob": True}, request
    )
    if chains.shape(old) != chains.shape(events):
        context["oob"] = False
        html = render_to_string("editor/canvas/pane.html#events", context, request)
        response = HttpResponse(html + history)
        return reswap(retarget(response, "#cv-events"), "outerHTML")
    html = render_to_string("editor/canvas/pane.html#event_warnings", context, request)
    return HttpResponse(html + history)
