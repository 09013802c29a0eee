"""What the page editor does to a page's widgets: add, move and resize on the 12-column
grid, delete, copy and paste, rename, and set one property. The views record each of
these as one edit (editor.canvas_history); this module only changes rows.

Layout rules:
- a top-level widget has x 0–11, w 1–12 with x + w ≤ 12, y ≥ 0 and h ≥ 1 (clamped, never
  refused); a move keeps the width and shifts x left, a resize keeps x and narrows w;
- a new top-level widget dropped over others goes to the nearest free spot instead
  (:func:`free_spot`: narrowed to at most half its width if that keeps it where it was
  dropped, such as a Table beside a Form), so that nothing already there moves;
- a top-level widget moved or resized over others pushes them down until nothing
  overlaps (what Appsmith does), so that the grid never stacks widgets on one another;
- the children of a container (form, container, modal) are drawn one under another in
  the order of their y; their x, y, w, h only matter again if they leave the container.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from builder.models import Page, Widget
from builder.names import validate_identifier
from builder.schema import WidgetDocument
from core.errors import KilnError
from core.text import parse_bool
from widgets import TYPES, Prop, get_type
from widgets.values import parse_number

COLUMNS = 12
MAX_Y = 1000
MAX_H = 100


class EditError(KilnError, ValueError):
    """A change the editor refuses; ``field`` names what to fix, ``str()`` says why."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(field, message)


# Layout ----------------------------------------------------------------------------------
def size_of(widget_type: str) -> tuple[int, int]:
    return get_type(widget_type).size


def whole_number(data, key: str) -> int | None:
    """``data[key]`` as an int, None when absent or empty; EditError when not a number."""
    raw = data.get(key)
    if raw is None or str(raw).strip() == "":
        return None
    number = parse_number(raw)
    if number is None:
        raise EditError(f"{key} must be a whole number, not “{raw}”.", key)
    return int(number)


def clamp(x: int, y: int, w: int, h: int, *, keep_x: bool = False) -> tuple[int, int, int, int]:
    """The layout on the grid: x 0–11, w 1–12, x + w ≤ 12, 0 ≤ y ≤ MAX_Y, 1 ≤ h ≤ MAX_H.

    When x + w is over 12, a resize (``keep_x``) narrows w; a move shifts x left."""
    w = min(max(w, 1), COLUMNS)
    h = min(max(h, 1), MAX_H)
    x = min(max(x, 0), COLUMNS - 1)
    y = min(max(y, 0), MAX_Y)
    if x + w > COLUMNS:
        if keep_x:
            w = COLUMNS - x
        else:
            x = COLUMNS - w
    return x, y, w, h


def _overlap(a: Widget, b: Widget) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def push_down(page: Page, placed: Widget) -> None:
    """Moves the top-level widgets that overlap ``placed`` (and then each other) down."""
    if placed.parent_id is not None:
        return
    settled = [placed]
    others = page.widgets.filter(parent=None).exclude(pk=placed.pk).order_by("y", "x", "id")
    for widget in others:
        start = widget.y
        while hits := [other for other in settled if _overlap(other, widget)]:
            widget.y = max(other.y + other.h for other in hits)
        if widget.y != start:
            widget.save(update_fields=["y"])
        settled.append(widget)


def free_spot(page: Page, x: int, y: int, w: int, h: int) -> tuple[int, int, int, int]:
    """Where a new top-level widget of size ``w`` × ``h`` dropped at ``x``, ``y`` goes: there
    if nothing is in the way, else the free place nearest to it (a row away costs twice a
    column; each column narrower than ``w``, down to half of it, costs one). Below every
    widget is always free."""
    taken: set[tuple[int, int]] = set()
    bottom = 0
    for ox, oy, ow, oh in page.widgets.filter(parent=None).values_list("x", "y", "w", "h"):
        bottom = max(bottom, oy + oh)
        taken.update((col, row) for col in range(ox, ox + ow) for row in range(oy, oy + oh))

    def free(cx: int, cy: int, cw: int) -> bool:
        return not any(
            (col, row) in taken for col in range(cx, cx + cw) for row in range(cy, cy + h)
        )

    x, y, w, h = clamp(x, y, w, h)
    if free(x, y, w):
        return x, y, w, h
    best: tuple[int, tuple[int, int, int]] | None = None
    rows = range(max(0, y - 2 * h), min(max(bottom, y) + 1, MAX_Y) + 1)
    for cw in range(w, max(1, (w + 1) // 2) - 1, -1):
        for cy in rows:
            for cx in range(COLUMNS - cw + 1):
                cost = abs(cx - x) + 2 * abs(cy - y) + (w - cw)
                if (best is None or cost < best[0]) and free(cx, cy, cw):
                    best = (cost, (cx, cy, cw))
    if best is None:
        return clamp(x, bottom, w, h)
    cx, cy, cw = best[1]
    return cx, cy, cw, h


def _next_child_y(parent: Widget) -> int:
    last = parent.children.order_by("-y").values_list("y", flat=True).first()
    return 0 if last is None else last + 1


# Names -----------------------------------------------------------------------------------
def taken_names(page: Page) -> set[str]:
    """Names a new widget cannot take: the page's widgets and the app's queries (a widget
    named like a query would hide it from bindings)."""
    names = set(page.widgets.values_list("name", flat=True))
    names |= set(page.app.queries.values_list("name", flat=True))
    return names


def free_name(widget_type: str, taken: set[str]) -> str:
    """``<type><n>`` with the smallest n ≥ 1 not taken: input1, input2, form1…"""
    n = 1
    while f"{widget_type}{n}" in taken:
        n += 1
    return f"{widget_type}{n}"


def rename(widget: Widget, new_name: str) -> None:
    new_name = (new_name or "").strip()
    if new_name == widget.name:
        return
    try:
        validate_identifier(new_name)
    except ValidationError as exc:
        raise EditError(exc.messages[0], "name") from None
    if widget.page.widgets.filter(name=new_name).exclude(pk=widget.pk).exists():
        raise EditError(f"“{new_name}” is already the name of a widget on this page.", "name")
    if widget.page.app.queries.filter(name=new_name).exists():
        raise EditError(f"“{new_name}” is already the name of a query of this app.", "name")
    widget.name = new_name
    widget.save(update_fields=["name"])


# Adding, moving, deleting ------------------------------------------------------------------
def container_named(page: Page, name: str) -> Widget:
    parent = page.widgets.filter(name=name).first()
    if parent is None:
        raise EditError(f"There is no widget “{name}” on this page.", "parent")
    if not _is_container(parent.type):
        raise EditError(
            f"{parent.name} is not a container: drop widgets into a form, a container or a modal.",
            "parent",
        )
    return parent


def _is_container(widget_type: str) -> bool:
    try:
        return get_type(widget_type).container
    except LookupError:
        return False


def add_widget(page: Page, widget_type: str, x: int, y: int, parent: str = "") -> Widget:
    if widget_type not in TYPES:
        raise EditError(f"There is no widget type “{widget_type}”.", "type")
    w, h = size_of(widget_type)
    container = container_named(page, parent) if parent else None
    if container is not None:
        x, y = 0, _next_child_y(container)
    else:
        x, y, w, h = free_spot(page, x, y, w, h)
    widget = Widget.objects.create(
        page=page,
        parent=container,
        name=free_name(widget_type, taken_names(page)),
        type=widget_type,
        properties=copy.deepcopy(get_type(widget_type).initial_properties),
        x=x,
        y=y,
        w=w,
        h=h,
    )
    push_down(page, widget)
    return widget


def move(widget: Widget, data) -> None:
    """Moves and/or resizes ``widget`` from ``data`` (any of x, y, w, h, and parent: a
    container's name, or "" for the page itself)."""
    x, y, w, h = (whole_number(data, key) for key in ("x", "y", "w", "h"))
    if "parent" in data:
        _reparent(widget, data.get("parent") or "")
    if widget.parent_id is None:
        resizing = x is None and (w is not None or h is not None)
        widget.x, widget.y, widget.w, widget.h = clamp(
            widget.x if x is None else x,
            widget.y if y is None else y,
            widget.w if w is None else w,
            widget.h if h is None else h,
            keep_x=resizing,
        )
    else:
        # Inside a container only the size is kept (for when it leaves the container).
        _, _, widget.w, widget.h = clamp(
            0, 0, widget.w if w is None else w, widget.h if h is None else h
        )
    widget.save()
    push_down(widget.page, widget)


def _reparent(widget: Widget, parent_name: str) -> None:
    if not parent_name:
        widget.parent = None
        return
    container = container_named(widget.page, parent_name)
    ancestor: Widget | None = container
    while ancestor is not None:
        if ancestor.pk == widget.pk:
            raise EditError(f"{widget.name} cannot go inside itself.", "parent")
        ancestor = ancestor.parent
    if widget.parent_id != container.pk:
        widget.parent = container
        widget.y = _next_child_y(container)


def delete(widget: Widget) -> None:
    widget.delete()  # its children go with it


# Copy and paste ----------------------------------------------------------------------------
def subtree(widgets: list[WidgetDocument], name: str) -> list[WidgetDocument]:
    """``name`` and everything inside it, from a page's widgets (parents first)."""
    names = {name}
    items = []
    for item in widgets:
        if item.name == name or item.parent in names:
            names.add(item.name)
            items.append(item.model_copy(deep=True))
    return items


def paste(
    page: Page, items: list[WidgetDocument], into: str = "", same_page: bool = False
) -> Widget:
    """Creates copies of ``items`` (a :func:`subtree`) with fresh names.

    The copy goes into the container ``into`` when one is given; else beside the original
    (in its container when that is on this page), offset below it."""
    if not items:
        raise EditError("Nothing to paste: copy a widget first.")
    taken = taken_names(page)
    renamed: dict[str, str] = {}
    for item in items:
        name = free_name(item.type, taken)
        taken.add(name)
        renamed[item.name] = name
    root, *rest = items
    parent = None
    if into:
        parent = container_named(page, into)
    elif same_page and root.parent:
        parent = page.widgets.filter(name=root.parent).first()
    created: dict[str, Widget] = {}
    for item in items:
        is_root = item is root
        widget = Widget.from_document(
            item.model_copy(update={"name": renamed[item.name]}),
            page=page,
            parent=parent if is_root else created[renamed[item.parent]],
        )
        if is_root:
            if parent is not None:
                widget.y = _next_child_y(parent)
            else:
                widget.x, widget.y, widget.w, widget.h = clamp(
                    widget.x, widget.y + widget.h, widget.w, widget.h
                )
        widget.save()
        created[widget.name] = widget
    copy_root = created[renamed[root.name]]
    push_down(page, copy_root)
    return copy_root


# Properties ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cleaned:
    """A property value to store, or ``remove`` to go back to the type's default."""

    value: Any = None
    remove: bool = False


def _is_binding(prop: Prop, text: str) -> bool:
    return prop.bindable and "<<" in text


def clean_property(prop: Prop, raw: str | None) -> Cleaned:
    """What to store for ``raw`` as typed in the property pane; EditError naming the
    property when it cannot be stored. Bindings are stored as typed."""
    label = prop.label
    kind = prop.kind
    if kind == "bool":
        if raw is None:  # an unchecked box is not posted
            return Cleaned(False)
        text = raw.strip()
        if _is_binding(prop, text):
            return Cleaned(raw)
        parsed = parse_bool(text)
        if parsed is not None:
            return Cleaned(parsed)
        raise EditError(f"{label}: “{text}” is not true or false.", prop.name)
    raw = "" if raw is None else raw
    text = raw.strip()
    if kind in ("text", "multiline"):
        return Cleaned(raw)
    if kind == "number":
        if not text:
            return Cleaned(remove=True)
        if _is_binding(prop, text):
            return Cleaned(raw)
        number = parse_number(text)
        if number is None:
            raise EditError(f"{label}: “{text}” is not a number.", prop.name)
        return Cleaned(number)
    if kind == "select":
        if text in prop.choices:
            return Cleaned(text)
        if _is_binding(prop, text):
            return Cleaned(raw)
        raise EditError(f"{label}: choose one of {', '.join(prop.choices)}.", prop.name)
    if not text:
        return Cleaned(remove=True)
    if kind == "list" and not text.startswith("["):
        if _is_binding(prop, text):
            return Cleaned(raw)
        # "a, b" or one item a line, as people type lists.
        items = [item.strip() for item in text.replace("\n", ",").split(",")]
        return Cleaned([item for item in items if item])
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        if _is_binding(prop, text):
            return Cleaned(raw)
        raise EditError(
            f"{label}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
            prop.name,
        ) from None
    if kind == "list" and not isinstance(parsed, list):
        raise EditError(f'{label}: must be a JSON list such as ["a", "b"].', prop.name)
    return Cleaned(parsed)


def set_property(widget: Widget, prop: Prop, cleaned: Cleaned) -> None:
    properties = dict(widget.properties or {})
    if cleaned.remove:
        properties.pop(prop.name, None)
    else:
        properties[prop.name] = cleaned.value
    widget.properties = properties
    widget.save(update_fields=["properties"])


def as_text(prop: Prop, value: Any) -> str:
    """A stored property value as the pane's field shows it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if prop.kind in ("json", "list") or isinstance(value, dict | list):
        return json.dumps(value, indent=2 if _is_nested(value) else None, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_nested(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value)
    if isinstance(value, list):
        return any(isinstance(item, dict | list) for item in value)
    return False
