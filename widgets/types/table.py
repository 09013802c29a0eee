"""Table: rows (usually a query's data) with search, sort, pages and row selection.

The table's controls are ordinary form fields of the page, named ``<name>.__search``,
``<name>.__sort`` ("email" or "-email"), ``<name>.__page`` and ``<name>.__selected``
(the row's index in ``data``). Each is a hidden input holding the current value, and the
sort and page buttons carry the same names: htmx posts the clicked button after the
form's fields, so the last value posted under a name is the one that counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain
from typing import Any

from django.http import QueryDict

from widgets.base import COMMON_PROPS, Prop, WidgetType, posted
from widgets.values import display_text, parse_number


@dataclass(frozen=True)
class Column:
    key: str
    label: str


@dataclass
class TableView:
    """What one render of a table shows."""

    rows: list[dict]
    columns: list[Column]
    search: str
    sort: str
    page: int
    pages: int
    total: int  # rows after the search
    start: int  # 0-based index of the first shown row in the searched, sorted rows
    shown: list[int]  # indexes into ``rows``, in display order
    selected: int | None


def normalize_rows(data: Any) -> list[dict]:
    if isinstance(data, dict):
        # One record, or a query result wrapping its rows.
        data = data.get("rows", data.get("data", [data]))
    if not isinstance(data, list | tuple):
        return []
    return [row if isinstance(row, dict) else {"value": row} for row in data]


def normalize_columns(raw: list, rows: list[dict]) -> list[Column]:
    columns = []
    for item in raw or ():
        if isinstance(item, dict):
            key = display_text(item.get("key", item.get("name", "")))
            if key:
                columns.append(Column(key, display_text(item.get("label") or key)))
        elif display_text(item):
            columns.append(Column(display_text(item), display_text(item)))
    if columns:
        return columns
    keys = dict.fromkeys(chain.from_iterable(rows))  # every row's keys, in order
    return [Column(str(key), str(key)) for key in keys]


def _sort_key(value: Any) -> tuple:
    number = parse_number(value) if isinstance(value, int | float | str) else None
    if number is not None:
        return (0, number, "")
    return (1, 0, display_text(value).casefold())


def build_view(
    rows: list[dict],
    columns: list[Column],
    *,
    search: str,
    sort: str,
    page: int,
    page_size: int | None,
    selected: int | None,
) -> TableView:
    order = list(range(len(rows)))
    needle = search.strip().casefold()
    if needle:
        order = [
            i
            for i in order
            if any(needle in display_text(rows[i].get(c.key)).casefold() for c in columns)
        ]
    key = sort.lstrip("-")
    if key and any(c.key == key for c in columns):
        # Blanks go last whichever way the column is sorted.
        blank = [i for i in order if rows[i].get(key) in (None, "")]
        filled = [i for i in order if rows[i].get(key) not in (None, "")]
        filled.sort(key=lambda i: _sort_key(rows[i].get(key)), reverse=sort.startswith("-"))
        order = filled + blank
    total = len(order)
    size = int(page_size) if page_size and page_size > 0 else max(total, 1)
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    start = (page - 1) * size
    if selected is not None and not 0 <= selected < len(rows):
        selected = None
    return TableView(
        rows=rows,
        columns=columns,
        search=search,
        sort=sort,
        page=page,
        pages=pages,
        total=total,
        start=start,
        shown=order[start : start + size],
        selected=selected,
    )


def view_signature(search: str, sort: str) -> str:
    # JSON, not a newline-joined string: browsers send newlines in fields as CRLF.
    return json.dumps([sort, search], ensure_ascii=False)


def next_sort(current: str, key: str) -> str:
    """Ascending, then descending, then unsorted."""
    if current == key:
        return f"-{key}"
    if current == f"-{key}":
        return ""
    return key


class TableWidget(WidgetType):
    type = "table"
    label = "Table"
    size = (8, 6)
    template = "widgets/table.html"
    events = ("row_selected",)
    props = (
        Prop("data", "Data", "json", default=[], help="A list of rows (objects)."),
        Prop(
            "columns",
            "Columns",
            "list",
            default=[],
            help='Keys to show, or {"key", "label"} objects; empty shows every key.',
        ),
        Prop("searchable", "Search", "bool", default=True),
        Prop("page_size", "Rows per page", "number", default=10, help="0 shows every row."),
        Prop("selectable", "Row selection", "bool", default=True),
        Prop(
            "default_sort",
            "Default sort",
            "text",
            default="",
            help='A column key, "-" in front for descending: "-created_at".',
        ),
        *COMMON_PROPS,
    )

    def _view(self, props: dict, controls: dict) -> TableView:
        rows = normalize_rows(props["data"])
        columns = normalize_columns(props["columns"], rows)
        selected = controls.get("selected")
        return build_view(
            rows,
            columns,
            search=controls.get("search") or "",
            sort=controls.get("sort", props["default_sort"]) or "",
            page=controls.get("page") or 1,
            page_size=props["page_size"],
            selected=selected if props["selectable"] else None,
        )

    @staticmethod
    def _controls(name: str, data: QueryDict) -> dict:
        search = posted(data, f"{name}.__search") or ""
        controls: dict[str, Any] = {"search": search}
        sort = posted(data, f"{name}.__sort")
        if sort is not None:
            controls["sort"] = sort.strip()
        page = parse_number(posted(data, f"{name}.__page"))
        controls["page"] = page if isinstance(page, int) else 1
        signature = posted(data, f"{name}.__view")
        if signature is not None and signature != view_signature(search, controls.get("sort", "")):
            # A new search or sort starts again at the first page.
            controls["page"] = 1
        selected = parse_number(posted(data, f"{name}.__selected"))
        controls["selected"] = selected if isinstance(selected, int) else None
        return controls

    def read_state(self, spec, data, files, child_states):
        props, _ = self.clean_props(spec.props)
        view = self._view(props, self._controls(spec.name, data))
        row = view.rows[view.selected] if view.selected is not None else None
        return {
            "data": view.rows,
            "selected_row": row,
            "selected_row_index": view.selected,
            "search_text": view.search,
            "page": view.page,
            "sort": view.sort,
        }

    def get_context(self, spec, props, state, attrs):
        controls: dict[str, Any] = {}
        if state is not None:
            controls = {
                "search": display_text(state.get("search_text")),
                "page": state.get("page") if isinstance(state.get("page"), int) else 1,
                "selected": state.get("selected_row_index"),
            }
            if "sort" in state:
                controls["sort"] = display_text(state["sort"])
        view = self._view(props, controls)
        shown_rows = [
            {
                "index": i,
                "number": i + 1,
                "selected": i == view.selected,
                "cells": [display_text(view.rows[i].get(c.key)) for c in view.columns],
            }
            for i in view.shown
        ]
        headers = []
        for column in view.columns:
            direction = (
                "ascending"
                if view.sort == column.key
                else "descending"
                if view.sort == f"-{column.key}"
                else "none"
            )
            headers.append(
                {
                    "column": column,
                    "next": next_sort(view.sort, column.key),
                    "direction": direction,
                }
            )
        shown_indexes = set(view.shown)
        return {
            "view": view,
            "headers": headers,
            "shown_rows": shown_rows,
            "colspan": len(view.columns) + (1 if props["selectable"] else 0) or 1,
            "first": view.start + 1,
            "last": view.start + len(view.shown),
            "signature": view_signature(view.search, view.sort),
            # A selection on another page is kept by a hidden field of the same name.
            "selected_elsewhere": view.selected is not None and view.selected not in shown_indexes,
            "select_attrs": attrs.events.get("row_selected") or attrs.refresh,
        }

    def default_state(self, props: dict) -> dict | None:
        return {"selected_row": None, "data": []}
