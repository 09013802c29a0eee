"""Checkbox: a yes/no choice ("I agree to the terms")."""

from __future__ import annotations

from typing import Any

from core.text import as_bool
from widgets.base import COMMON_PROPS, WidgetType, field_props, label_of

# Posted beside an enabled checkbox, so that "absent" can mean "unchecked" only when the
# browser did have the checkbox to post.
PRESENT = "{name}.__present"


class CheckboxWidget(WidgetType):
    type = "checkbox"
    label = "Checkbox"
    size = (3, 1)
    initial_properties = {"label": "Label"}
    template = "widgets/checkbox.html"
    events = ("change",)
    value_key = "isChecked"
    props = (
        *field_props(default_kind="bool", placeholder=False),
        *COMMON_PROPS,
    )

    def read_state(self, spec, data, files, child_states):
        props, _ = self.clean_props(spec.props)
        if props["disabled"]:
            checked = props["default_value"]
        elif spec.name in data:
            checked = True
        elif PRESENT.format(name=spec.name) in data:
            checked = False
        else:
            checked = props["default_value"]
        state = {"value": checked, "isChecked": checked}
        state["isValid"] = not self.validate(spec, state)
        return state

    def validate(self, spec, state):
        props, _ = self.clean_props(spec.props)
        if not props["visible"] or props["disabled"] or not props["required"]:
            return []
        checked = state.get("isChecked", state.get("value"))
        return [] if as_bool(checked) else [f"{label_of(spec, props)} is required."]

    def get_context(self, spec, props, state, attrs):
        if state is None:
            checked = props["default_value"]
        else:
            checked = as_bool(state.get("isChecked", state.get("value")))
        return {"checked": checked, "present": PRESENT.format(name=spec.name)}

    def default_state(self, props: dict) -> dict | None:
        return {"value": as_bool(props.get("default_value"))}

    def posted_default(self, default: Any) -> str | None:
        return "on" if as_bool(default, unknown=False) else None
