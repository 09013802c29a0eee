"""The one vocabulary of actions that widget events run (docs/events.md): the editor
edits and checks them, the importer checks what they refer to, the viewer runs them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .base import TOAST_KINDS, Action, ActionError, Runner, Scope, Step
from .kinds import (
    CloseModal,
    Download,
    Navigate,
    OpenModal,
    ResetWidget,
    RunQuery,
    SetValue,
    ShowToast,
)
from .paths import CHAINS, StepPath

__all__ = [
    "ACTIONS",
    "CHAINS",
    "REGISTRY",
    "TOAST_KINDS",
    "UNWIRED_SUBMIT",
    "Action",
    "ActionError",
    "RunQuery",
    "Runner",
    "Scope",
    "Step",
    "StepPath",
    "event_warnings",
    "get_action",
    "normalise",
    "run_chain",
    "walk",
]

#: Every action by its key, in the order the editor's "Add action" menu offers them.
REGISTRY: dict[str, Action] = {
    action.key: action
    for action in (
        RunQuery(),
        ShowToast(),
        ResetWidget(),
        SetValue(),
        Navigate(),
        OpenModal(),
        CloseModal(),
        Download(),
    )
}
ACTIONS: dict[str, str] = {key: action.label for key, action in REGISTRY.items()}


#: The editor's warning on a Form's submit event with no actions.
UNWIRED_SUBMIT = (
    "Nothing runs when this form is submitted: its Submit button only checks the fields. "
    "Add an action, e.g. Run query."
)


def event_warnings(event: str, actions: Any) -> list[str]:
    """What is wrong with an event as a whole (each action has its own warnings)."""
    if event == "submit" and not actions:
        return [UNWIRED_SUBMIT]
    return []


def get_action(kind: Any) -> Action | None:
    return REGISTRY.get(kind) if isinstance(kind, str) else None


def normalise(raw: Any, where: str) -> dict:
    """One action with its chains in the stored format, only its own keys; ActionError
    naming ``where`` when malformed."""
    if not isinstance(raw, Mapping):
        raise ActionError(f"{where}: an action must be an object.")
    kind = get_action(raw.get("action"))
    if kind is None:
        raise ActionError(f"{where}: unknown action {raw.get('action')!r}.")
    clean = kind.normalise(raw, where)
    for chain in kind.chains:
        items = raw.get(chain) or []
        if not isinstance(items, list):
            raise ActionError(f"{where}.{chain} must be a list of actions.")
        clean[chain] = [normalise(a, f"{where}.{chain}[{i}]") for i, a in enumerate(items)]
    return clean


def walk(actions: Any, where: str) -> Iterator[tuple[Action, Mapping, str]]:
    """(kind, action, where) of every known action of a list and of its chains, where
    as in ``submit[0].on_success[1]``; what is not an action is skipped."""
    if not isinstance(actions, list):
        return
    for index, action in enumerate(actions):
        kind = get_action(action.get("action")) if isinstance(action, Mapping) else None
        if kind is None:
            continue
        here = f"{where}[{index}]"
        yield kind, action, here
        for chain in kind.chains:
            yield from walk(action.get(chain), f"{here}.{chain}")


def run_chain(actions: list, path: StepPath, step: Step, runner: Runner) -> None:
    """The actions of one list, in order; a run_query does not hold back the next."""
    for index, action in enumerate(actions or []):
        kind = get_action(action.get("action")) if isinstance(action, Mapping) else None
        if kind is not None:
            kind.run(action, Step(path.at(index), step.trigger, step.states), runner)
