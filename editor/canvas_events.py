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

from bindings import has_bindings
from builder.actions import (
    ACTIONS,
    CHAINS,
    TOAST_KINDS,
    ActionError,
    Scope,
    StepPath,
    event_warnings,
    get_action,
)
from builder.actions import normalise as normalise_action
from queries.errors import RunRequestError
from queries.schedule import parse_send_at

from .canvas_edits import EditError

__all__ = ["ACTIONS", "TOAST_KINDS", "Scope"]


def blank(kind: str, scope: Scope) -> dict:
    return get_action(kind).blank(scope)


# Reading ---------------------------------------------------------------------------------
def normalize(action: Any, where: str) -> dict:
    """One action in the stored format, only its own keys; EditError when malformed."""
    try:
        return normalise_action(action, where)
    except ActionError as exc:
        raise EditError(exc.message, "events") from None


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


def from_form(data: Mapping, event_names: Collection[str], old: Mapping, scope: Scope) -> dict:
    """The events as the pane's form describes them, with its add/remove applied."""
    op = data.get("op", "")

    def collect(prefix: StepPath) -> list[dict]:
        pattern = re.compile(rf"^{re.escape(prefix.field(''))}(\d+)-action$")
        indices = sorted({int(m.group(1)) for key in data if (m := pattern.match(key))})
        actions = []
        for index in indices:
            path = prefix.at(index)
            kind = get_action(data.get(path.field("action")))
            if op == f"remove:{path}" or kind is None:
                continue
            typed = {key: data.get(path.field(key)) for key in kind.keys}
            action = kind.from_form(typed, path.find(old))
            for chain in kind.chains:
                action[chain] = collect(path.chain(chain))
            actions.append(action)
        added = get_action(data.get(f"add:{prefix}"))
        if added is not None:
            actions.append(added.blank(scope))
        return actions

    events = {}
    for event in event_names:
        actions = collect(StepPath(event))
        if actions:
            events[event] = actions
    return events


def shape(events: Mapping) -> list[tuple[str, str]]:
    """(path, kind) of every action: when it changes, the form must be drawn again."""
    out: list[tuple[str, str]] = []

    def walk(prefix: StepPath, actions: list) -> None:
        for index, action in enumerate(actions or []):
            path = prefix.at(index)
            out.append((str(path), action.get("action", "")))
            for chain in CHAINS:
                if chain in action:
                    walk(path.chain(chain), action[chain])

    for event, actions in events.items():
        walk(StepPath(event), actions)
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
    warnings: list[str] = field(default_factory=list)


def send_at_warnings(action: Mapping) -> list[str]:
    """A run_query action's send_at typed as a literal time that is no date and time,
    or not ahead: said where it is typed, as the query editor's Send at says it, rather
    than to the person who clicks the published button."""
    text = action.get("send_at")
    if not isinstance(text, str) or not text.strip() or has_bindings(text):
        return []
    try:
        parse_send_at(text)
    except RunRequestError as exc:
        return [f"Send at: {exc.message.removeprefix('send_at: ')}"]
    return []


def rows(events: Mapping, event_names: Collection[str], scope: Scope, posted=None) -> list:
    """Each event of the type with its actions, warnings computed."""

    def build(prefix: StepPath, actions: list) -> list[ActionRow]:
        built = []
        for index, action in enumerate(actions or []):
            path = prefix.at(index)
            kind = get_action(action.get("action"))
            if kind is None:
                continue
            # JSON keys show what was typed, even when it is not valid JSON yet.
            texts = {}
            for key in kind.json_keys:
                typed = posted.get(path.field(key)) if posted is not None else None
                value = action.get(key) or {}
                texts[key] = (
                    typed
                    if typed is not None
                    else (json.dumps(value, ensure_ascii=False) if value else "")
                )
            row = ActionRow(
                path=str(path),
                action=action,
                label=kind.label,
                warnings=kind.warnings(action, scope, texts) + send_at_warnings(action),
                params_text=texts.get("params", ""),
            )
            row.handlers = [
                (chain, CHAINS[chain], str(sub), build(sub, action.get(chain) or []))
                for chain in kind.chains
                for sub in (path.chain(chain),)
            ]
            built.append(row)
        return built

    return [
        EventBlock(name, build(StepPath(name), actions), event_warnings(name, actions))
        for name in event_names
        for actions in ((events or {}).get(name) or [],)
    ]
