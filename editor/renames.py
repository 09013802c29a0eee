"""Renaming a widget or a query follows its uses: the bindings of every widget's
properties and events and of every query's fields and send_at, and the events' references by name
(``run_query``/``download`` ``query``, ``reset_widget``/``set_value`` ``widget``,
``open_modal``/``close_modal`` ``modal``).

The callers run these inside the transaction that renames, so that all of it is one
change (and, for a widget, one undo step of its page).
"""

from __future__ import annotations

from typing import Any

from bindings.rename import rename_in, rename_in_text
from builder.models import App, Page, Query, Widget

#: The keys of an action that hold a widget's name, and a query's.
WIDGET_KEYS = frozenset({"widget", "modal"})
QUERY_KEYS = frozenset({"query"})


def _in_events(value: Any, old: str, new: str, keys: frozenset[str]) -> Any:
    if isinstance(value, list):
        return [_in_events(item, old, new, keys) for item in value]
    if isinstance(value, dict):
        return {
            key: new if key in keys and item == old else _in_events(item, old, new, keys)
            for key, item in value.items()
        }
    if isinstance(value, str):
        return rename_in_text(value, old, new)
    return value


def _widgets(widgets, old: str, new: str, keys: frozenset[str]) -> None:
    for widget in widgets:
        properties = rename_in(widget.properties or {}, old, new)
        events = _in_events(widget.events or {}, old, new, keys)
        if properties != (widget.properties or {}) or events != (widget.events or {}):
            widget.properties, widget.events = properties, events
            widget.save(update_fields=["properties", "events"])


def _queries(app: App, old: str, new: str) -> None:
    for query in Query.objects.filter(app=app):
        fields = rename_in(query.fields or {}, old, new)
        send_at = rename_in_text(query.send_at, old, new)
        if fields != (query.fields or {}) or send_at != query.send_at:
            query.fields, query.send_at = fields, send_at
            query.save(update_fields=["fields", "send_at"])


def widget_renamed(page: Page, old: str, new: str) -> None:
    """After a widget of ``page`` was renamed: its page's widgets, and the app's queries
    unless another page has a widget of the old name (theirs could be meant)."""
    _widgets(page.widgets.all(), old, new, WIDGET_KEYS)
    if not Widget.objects.filter(page__app=page.app, name=old).exists():
        _queries(page.app, old, new)


def query_renamed(app: App, old: str, new: str) -> None:
    """After a query of ``app`` was renamed: every page's widgets and every query."""
    _widgets(Widget.objects.filter(page__app=app), old, new, QUERY_KEYS)
    _queries(app, old, new)
