"""The contract of an action: what it stores, how it is checked, what it refers to and
what it does when it runs (through a :class:`Runner` the viewer provides)."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from bindings import check_names
from core.errors import KilnError

from .paths import StepPath

TOAST_KINDS = ("success", "error", "info")


class ActionError(KilnError, ValueError):
    """A malformed action; the message names where it is (``submit[0].params``)."""

    def __init__(self, message: str):
        super().__init__("events", message)


@dataclass(frozen=True)
class Scope:
    """What the actions of one page can refer to."""

    queries: tuple[str, ...]
    widgets: tuple[str, ...]
    modals: tuple[str, ...]
    pages: tuple[tuple[str, str], ...]  # (slug, name)
    known_names: frozenset[str]

    def names(self, kind: str) -> set[str]:
        if kind == "page":
            return {slug for slug, _ in self.pages}
        return set({"query": self.queries, "widget": self.widgets, "modal": self.modals}[kind])


#: What the editor says about a reference left empty, and about one to nothing.
_MISSING = {
    "query": ("Choose a query.", "There is no query “{}” in this app."),
    "widget": ("Choose a widget.", "There is no widget “{}” on this page."),
    "modal": (
        "Choose a modal (add a Modal widget to the page first).",
        "There is no modal “{}” on this page.",
    ),
    "page": ("Choose a page.", "There is no page “{}” in this app."),
}


@dataclass
class Step:
    """One action being run: where it is, the widget whose event started the chain,
    and the widget state of the request."""

    path: StepPath | None
    trigger: str
    states: dict[str, dict]


class Runner(Protocol):
    """What running an action can do to the page; the viewer implements it."""

    def evaluate(self, where: str, raw: Any, step: Step) -> Any:
        """``raw`` with its bindings evaluated; None (and an error toast) if they fail."""

    def toast(self, kind: str, message: str) -> None: ...

    def rerender(self, widget: str, step: Step, *, reset: bool = False) -> None:
        """Draws ``widget`` again with ``step.states`` (or its defaults, ``reset``)."""

    def navigate(self, page: str, params: dict[str, Any]) -> None: ...

    def modal(self, name: str, *, open: bool) -> None: ...

    def run_query(self, query: str, action: dict, step: Step) -> None:
        """Starts a run of ``query``; when it ends, ``finished`` of the action runs."""

    def download(self, query: str, filename: str) -> None: ...

    def run_chain(self, actions: list[dict], path: StepPath, step: Step) -> None: ...


class Action:
    """One kind of action. Subclasses set the class attributes and override what
    differs; the registry (builder.actions) lists one instance of each."""

    key: ClassVar[str]
    label: ClassVar[str]
    #: The keys stored besides "action", with their defaults.
    keys: ClassVar[dict[str, Any]] = {}
    #: Keys naming something of the app: key -> "query", "widget", "modal" or "page".
    refs: ClassVar[dict[str, str]] = {}
    #: Keys whose value may hold bindings, with the label warnings use.
    bindable: ClassVar[dict[str, str]] = {}
    #: Keys edited as JSON text in the editor.
    json_keys: ClassVar[tuple[str, ...]] = ()
    #: Chains of further actions the action holds (keys of paths.CHAINS).
    chains: ClassVar[tuple[str, ...]] = ()
    #: Keys stored only when they are set: an option added later leaves the actions
    #: saved before it (and their files) as they were.
    optional: ClassVar[tuple[str, ...]] = ()

    # Storing ----------------------------------------------------------------------------
    def blank(self, scope: Scope) -> dict:
        """A new action as the editor adds it: the first query or modal is chosen."""
        action: dict[str, Any] = {"action": self.key, **copy.deepcopy(self.keys)}
        for key, kind in self.refs.items():
            if kind in ("query", "modal") and scope.names(kind):
                action[key] = {"query": scope.queries, "modal": scope.modals}[kind][0]
        action.update({chain: [] for chain in self.chains})
        return self._without_unset(action)

    def _without_unset(self, action: dict) -> dict:
        for key in self.optional:
            if not action.get(key):
                action.pop(key, None)
        return action

    def normalise(self, raw: Mapping, where: str) -> dict:
        """The action's own keys (not its chains) cleaned; ActionError when malformed."""
        clean: dict[str, Any] = {"action": self.key}
        for key, default in self.keys.items():
            clean[key] = self.clean(key, raw.get(key, default), where)
        return self._without_unset(clean)

    def clean(self, key: str, value: Any, where: str) -> Any:
        if key in self.bindable:
            return value if value is not None else ""
        return "" if value is None else str(value)

    def from_form(self, typed: Mapping[str, Any], old: Any) -> dict:
        """The action's own keys as the editor's form posts them (``typed[key]``, None
        for a field not posted); ``old`` is the stored action at the same path."""
        action: dict[str, Any] = {"action": self.key}
        for key, default in self.keys.items():
            if key in self.json_keys:
                action[key] = _json_or_old(typed.get(key), old, key)
            else:
                value = typed.get(key)
                action[key] = default if value is None else value
        return self._without_unset(action)

    # Checking ---------------------------------------------------------------------------
    def references(self, action: Mapping) -> list[tuple[str, str, str]]:
        """(key, kind, name) of everything the action names: the importer and the
        editor check them."""
        return [(key, kind, str(action.get(key) or "")) for key, kind in self.refs.items()]

    def warnings(self, action: Mapping, scope: Scope, typed: Mapping[str, str] | None = None):
        """What is wrong with the action before anything runs; ``typed`` is the text of
        the JSON keys as typed in the editor."""
        found: list[str] = []
        for _key, kind, name in self.references(action):
            empty, absent = _MISSING[kind]
            if not name:
                found.append(empty)
            elif name not in scope.names(kind):
                found.append(absent.format(name))
        for key in self.json_keys:
            text = (typed or {}).get(key) or ""
            if text.strip() and not isinstance(_loads(text), dict):
                found.append(
                    f"{self.bindable.get(key, key)}: not a JSON object such as "
                    '{"id": "<< url.id >>"}; not saved.'
                )
        for key, label in self.bindable.items():
            found += check_names(label, action.get(key) or self.keys[key], scope.known_names)
        return found

    # Running ----------------------------------------------------------------------------
    def run(self, action: Mapping, step: Step, runner: Runner) -> None:
        raise NotImplementedError


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _json_or_old(text: Any, old: Any, key: str) -> dict:
    """A JSON object typed in the editor; while it is not valid JSON the stored value
    stays (the warning under the field says why)."""
    if text is None or not str(text).strip():
        return {}
    value = _loads(str(text))
    if isinstance(value, dict):
        return value
    previous = old.get(key) if isinstance(old, Mapping) else None
    return previous if isinstance(previous, dict) else {}
