"""The Events section of the property pane: a widget's action chains (docs/events.md),
edited as a form and stored in ``Widget.events`` in exactly that format.

The form names each field by its path: ``submit-0-action``, ``submit-0-query``,
``submit-0-on_success-1-message``. Two extra fields change the structure: a select
``add:<list path>`` (the kind of action to append to that list) and ``op`` =
``remove:<action path>``. :func:`from_form` reads the whole form back into the stored
format; :func:`normalize_events` checks a document posted as JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from bindings import check_names

from .canvas_edits import EditError

#: Every action, in the order the "Add action" menu offers them.
ACTIONS: dict[str, str] = {
    "run_query": "Run query",
    "show_toast": "Show toast",
    "reset_widget": "Reset widget",
    "set_value": "Set value",
    "navigate": "Navigate to page",
    "open_modal": "Open modal",
    "close_modal": "Close modal",
    "download": "Download",
}
TOAST_KINDS = ("success", "error", "info")
HANDLERS = {"on_success": "On success", "on_error": "On error"}
#: The keys each action stores, besides "action", with their defaults.
KEYS: dict[str, dict[str, Any]] = {
    "run_query": {"query": ""},
    "show_toast": {"kind": "success", "message": ""},
    "reset_widget": {"widget": ""},
    "set_value": {"widget": "", "value": ""},
    "navigate": {"page": "", "params": {}},
    "open_modal": {"modal": ""},
    "close_modal": {"modal": ""},
    "download": {"query": "", "filename": ""},
}


@dataclass(frozen=True)
class Scope:
    """What the actions of one page can refer to."""

    queries: tuple[str, ...]
    widgets: tuple[str, ...]
    modals: tuple[str, ...]
    pages: tuple[tuple[str, str], ...]  # (slug, name)
    known_names: frozenset[str]


def blank(kind: str, scope: Scope) -> dict:
    action: dict[str, Any] = {"action": kind, **json.loads(json.dumps(KEYS[kind]))}
    if kind in ("run_query", "download") and scope.queries:
        action["query"] = scope.queries[0]
    if kind in ("open_modal", "close_modal") and scope.modals:
        action["modal"] = scope.modals[0]
    if kind == "run_query":
        action.update({"on_success": [], "on_error": []})
    return action


# Reading ---------------------------------------------------------------------------------
def normalize(action: Any, where: str) -> dict:
    """One action in the stored format, only its own keys; EditError when malformed."""
    if not isinstance(action, Mapping):
        raise EditError(f"{where}: an action must be an object.", "events")
    kind = action.get("action")
    if kind not in ACTIONS:
        raise EditError(f"{where}: unknown action {kind!r}.", "events")
    clean: dict[str, Any] = {"action": kind}
    for key, default in KEYS[kind].items():
        value = action.get(key, default)
        if key == "params":
            if not isinstance(value, Mapping):
                raise EditError(f"{where}.params must be an object.", "events")
            value = {str(k): v for k, v in value.items()}
        elif key == "kind":
            value = value if value in TOAST_KINDS else "info"
        elif key in ("value", "message"):
            value = value if value is not None else ""
        else:
            value = "" if value is None else str(value)
        clean[key] = value
    if kind == "run_query":
        for handler in HANDLERS:
            items = action.get(handler) or []
            if not isinstance(items, list):
                raise EditError(f"{where}.{handler} must be a list of actions.", "events")
            clean[handler] = [normalize(a, f"{where}.{handler}[{i}]") for i, a in enumerate(items)]
    return clean


def normalize_events(events: Any, event_names: Collection[str]) -> dict:
    """A posted events document in the stored format; EditError naming what is wrong."""
    if not isinstance(events, Mapping):
        raise EditError("Events must be an object of event names to lists of actions.", "events")
    clean: dict[str, list] = {}
    for event, actions in events.items():
        if event not in event_names:
            raise EditError(f"This widget has no event {event!r}.", "events")
        if not isinstance(actions, list):
            raise EditError(f"{event} must be a list of actions.", "events")
        normalized = [normalize(a, f"{event}[{i}]") for i, a in enumerate(actions)]
        if normalized:
            clean[event] = normalized
    return clean


def _at(events: Mapping, path: str) -> Any:
    """The action or list at a form path (``submit-0-on_success-1``) of stored events."""
    node: Any = events
    for step in path.split("-"):
        try:
            node = node[int(step)] if step.isdigit() else node.get(step)
        except (IndexError, AttributeError, TypeError):
            return None
        if node is None:
            return None
    return node


def from_form(data: Mapping, event_names: Collection[str], old: Mapping, scope: Scope) -> dict:
    """The events as the pane's form describes them, with its add/remove applied."""
    op = data.get("op", "")

    def collect(prefix: str) -> list[dict]:
        pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)-action$")
        indices = sorted({int(m.group(1)) for key in data if (m := pattern.match(key))})
        actions = []
        for index in indices:
            path = f"{prefix}-{index}"
            kind = data.get(f"{path}-action")
            if op == f"remove:{path}" or kind not in ACTIONS:
                continue
            action: dict[str, Any] = {"action": kind}
            for key, default in KEYS[kind].items():
                if key == "params":
                    action[key] = _params(data.get(f"{path}-params"), _at(old, path))
                else:
                    action[key] = data.get(f"{path}-{key}", default)
            if action.get("kind", "success") not in TOAST_KINDS:
                action["kind"] = "info"
            if kind == "run_query":
                for handler in HANDLERS:
                    action[handler] = collect(f"{path}-{handler}")
            actions.append(action)
        added = data.get(f"add:{prefix}")
        if added in ACTIONS:
            actions.append(blank(added, scope))
        return actions

    events = {}
    for event in event_names:
        actions = collect(event)
        if actions:
            events[event] = actions
    return events


def _params(text: str | None, old_action: Any) -> dict:
    """Navigate's params from the JSON typed; while it is not valid JSON the stored
    params stay (the warning under the field says why)."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return value
    previous = old_action.get("params") if isinstance(old_action, Mapping) else None
    return previous if isinstance(previous, dict) else {}


def shape(events: Mapping) -> list[tuple[str, str]]:
    """(path, kind) of every action: when it changes, the form must be drawn again."""
    out: list[tuple[str, str]] = []

    def walk(prefix: str, actions: list) -> None:
        for index, action in enumerate(actions or []):
            path = f"{prefix}-{index}"
            out.append((path, action.get("action", "")))
            for handler in HANDLERS:
                if handler in action:
                    walk(f"{path}-{handler}", action[handler])

    for event, actions in events.items():
        walk(event, actions)
    return out


# Showing ---------------------------------------------------------------------------------
@dataclass
class ActionRow:
    """One action as the pane's form draws it."""

    path: str
    action: dict
    label: str
    warnings: list[str]
    params_text: str = ""
    #: (handler key, its label, the path of its list, its actions) for a run_query.
    handlers: list[tuple[str, str, str, list[ActionRow]]] = field(default_factory=list)


@dataclass
class EventBlock:
    name: str
    actions: list[ActionRow]


def rows(events: Mapping, event_names: Collection[str], scope: Scope, posted=None) -> list:
    """Each event of the type with its actions, warnings computed."""

    def build(prefix: str, actions: list) -> list[ActionRow]:
        built = []
        for index, action in enumerate(actions or []):
            path = f"{prefix}-{index}"
            kind = action.get("action", "")
            params_text = ""
            if kind == "navigate":
                typed = posted.get(f"{path}-params") if posted is not None else None
                params = action.get("params") or {}
                params_text = (
                    typed
                    if typed is not None
                    else (json.dumps(params, ensure_ascii=False) if params else "")
                )
            row = ActionRow(
                path=path,
                action=action,
                label=ACTIONS.get(kind, kind),
                warnings=warnings(action, scope, params_text),
                params_text=params_text,
            )
            if kind == "run_query":
                row.handlers = [
                    (handler, label, f"{path}-{handler}",
                     build(f"{path}-{handler}", action.get(handler) or []))
                    for handler, label in HANDLERS.items()
                ]  # fmt: skip
            built.append(row)
        return built

    return [EventBlock(name, build(name, (events or {}).get(name) or [])) for name in event_names]


def warnings(action: Mapping, scope: Scope, params_text: str = "") -> list[str]:
    """What is wrong with one action, before anything runs."""
    kind = action.get("action")
    found: list[str] = []
    if kind in ("run_query", "download"):
        query = action.get("query") or ""
        if not query:
            found.append("Choose a query.")
        elif query not in scope.queries:
            found.append(f"There is no query “{query}” in this app.")
    if kind in ("reset_widget", "set_value"):
        widget = action.get("widget") or ""
        if not widget:
            found.append("Choose a widget.")
        elif widget not in scope.widgets:
            found.append(f"There is no widget “{widget}” on this page.")
    if kind in ("open_modal", "close_modal"):
        modal = action.get("modal") or ""
        if not modal:
            found.append("Choose a modal (add a Modal widget to the page first).")
        elif modal not in scope.modals:
            found.append(f"There is no modal “{modal}” on this page.")
    if kind == "navigate":
        page = action.get("page") or ""
        if not page:
            found.append("Choose a page.")
        elif page not in {slug for slug, _ in scope.pages}:
            found.append(f"There is no page “{page}” in this app.")
        if params_text.strip():
            try:
                params = json.loads(params_text)
            except ValueError:
                params = None
            if not isinstance(params, dict):
                found.append('Params: not a JSON object such as {"id": "<< url.id >>"}; not saved.')
        found += check_names("Params", action.get("params") or {}, scope.known_names)
    if kind == "show_toast":
        found += check_names("Message", action.get("message") or "", scope.known_names)
    if kind == "set_value":
        found += check_names("Value", action.get("value") or "", scope.known_names)
    return found
