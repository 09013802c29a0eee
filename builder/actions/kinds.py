"""The actions a widget event can run (docs/events.md). One class per action; list a
new one in builder.actions.REGISTRY."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import TOAST_KINDS, Action, ActionError, Runner, Step


class RunQuery(Action):
    key = "run_query"
    label = "Run query"
    #: send_at: when to send (text with bindings), over the query's own; empty: the
    #: query's (queries/schedule.py reads it).
    keys = {"query": "", "send_at": ""}
    refs = {"query": "query"}
    bindable = {"send_at": "Send at"}
    optional = ("send_at",)
    chains = ("on_success", "on_error")

    def run(self, action: Mapping, step: Step, runner: Runner) -> None:
        runner.run_query(str(action.get("query") or ""), dict(action), step)

    @staticmethod
    def has_own_error_toast(action: Mapping) -> bool:
        """The on_error chain shows a toast of its own (else a failure shows its error)."""
        return any(h.get("action") == ShowToast.key for h in action.get("on_error") or [])

    def finished(
        self,
        action: Mapping,
        step: Step,
        runner: Runner,
        *,
        ok: bool,
        error: str | None,
        told: bool = False,
    ) -> None:
        """The run ended: its ``on_success`` or ``on_error`` chain runs. With ``told``
        the caller shows the outcome itself (a mail merge's panel and its toast), so a
        failure gets no toast of its own here."""
        chain = "on_success" if ok else "on_error"
        handlers = action.get(chain) or []
        if not ok and not told and not self.has_own_error_toast(action):
            # With no toast of its own, a failure still says what went wrong.
            runner.toast("error", error or "The query failed.")
        if handlers and step.path is not None:
            runner.run_chain(handlers, step.path.chain(chain), step)


class ShowToast(Action):
    key = "show_toast"
    label = "Show toast"
    keys = {"kind": "success", "message": ""}
    bindable = {"message": "Message"}

    def clean(self, key: str, value: Any, where: str) -> Any:
        if key == "kind":
            return value if value in TOAST_KINDS else "info"
        return super().clean(key, value, where)

    def from_form(self, typed: Mapping[str, Any], old: Any) -> dict:
        action = super().from_form(typed, old)
        if action["kind"] not in TOAST_KINDS:
            action["kind"] = "info"
        return action

    def run(self, action: Mapping, step: Step, runner: Runner) -> None:
        message = runner.evaluate(f"{step.trigger}.toast", action.get("message", ""), step)
        if message is not None:
            runner.toast(str(action.get("kind", "info")), str(message))


class ResetWidget(Action):
    key = "reset_widget"
    label = "Reset widget"
    keys = {"widget": ""}
    refs = {"widget": "widget"}

    def run(self, action: Mapping, step: Step, runner: Runner) -> None:
        runner.rerender(str(action.get("widget") or ""), step, reset=True)


class SetValue(Action):
    key = "set_value"
    label = "Set value"
    keys = {"widget": "", "value": ""}
    refs = {"widget": "widget"}
    bindable = {"value": "Value"}

    def run(self, action: Mapping, step: Step, runner: Runner) -> None:
        value = runner.evaluate(f"{step.trigger}.set_value", action.get("value"), step)
        target = str(action.get("widget") or "")
        text = "" if value is None else str(value)
        states = {**step.states, target: {"value": value, "text": text}}
        runner.rerender(target, Step(step.path, step.trigger, states))


class Navigate(Action):
    key = "navigate"
    label = "Navigate to page"
    keys = {"page": "", "params": {}}
    refs = {"page": "page"}
    bindable = {"params": "Params"}
    json_keys = ("params",)

    def clean(self, key: str, value: Any, where: str) -> Any:
        if key == "params":
            if not isinstance(value, Mapping):
                raise ActionError(f"{where}.params must be an object.")
            return {str(k): v for k, v in value.items()}
        return super().clean(key, value, where)

    def run(self, action: Mapping, step: Step, runner: Runner) -> None:
        params = {
            key: runner.evaluate(f"{step.trigger}.navigate", raw, step)
            for key, raw in (action.get("params") or {}).items()
        }
        runner.navigate(str(action.get("page") or ""), params)


class OpenModal(Action):
    key = "open_modal"
    label = "Open modal"
    keys = {"modal": ""}
    refs = {"modal": "modal"}

    def run(self, action: Mapping, step: Step, runner: Runner) -> None:
        runner.modal(str(action.get("modal") or ""), open=True)


class CloseModal(OpenModal):
    key = "close_modal"
    label = "Close modal"

    def run(self, action: Mapping, step: Step, runner: Runner) -> None:
        runner.modal(str(action.get("modal") or ""), open=False)


class Download(Action):
    key = "download"
    label = "Download"
    keys = {"query": "", "filename": ""}
    refs = {"query": "query"}

    def run(self, action: Mapping, step: Step, runner: Runner) -> None:
        runner.download(str(action.get("query") or ""), str(action.get("filename") or ""))
