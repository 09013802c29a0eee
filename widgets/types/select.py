"""Select: one option from a list, often bound to a query's rows."""

from __future__ import annotations

from typing import Any

from widgets.base import COMMON_PROPS, Prop, WidgetType, field_props, label_of, posted
from widgets.values import display_text


def normalize_options(raw: Any) -> list[dict]:
    """Options as ``{"label", "value"}`` dicts, from dicts or plain values."""
    if not isinstance(raw, list | tuple):
        return []
    options = []
    for item in raw:
        if isinstance(item, dict):
            if "value" not in item and "label" not in item:
                continue
            value = item.get("value", item.get("label"))
            label = item.get("label", value)
            options.append({"label": display_text(label), "value": value})
        else:
            options.append({"label": display_text(item), "value": item})
    return options


class SelectWidget(WidgetType):
    type = "select"
    label = "Select"
    size = (4, 2)
    initial_properties = {"label": "Label"}
    template = "widgets/select.html"
    events = ("change",)
    value_key = "value"
    props = (
        Prop(
            "options",
            "Options",
            "json",
            default=[],
            help='A list of {"label": …, "value": …}, or of plain values.',
        ),
        *field_props(),
        *COMMON_PROPS,
    )

    def read_state(self, spec, data, files, child_states):
        props, _ = self.clean_props(spec.props)
        raw = None if props["disabled"] else posted(data, spec.name)
        if raw is None:
            raw = props["default_value"]
        option = _find(normalize_options(props["options"]), raw)
        if option is not None:
            state = {"value": option["value"], "selectedOption": option}
        else:
            # Nothing chosen; or a value no option has, kept so that validate names it.
            state = {"value": raw or None, "selectedOption": None}
        state["isValid"] = not self.validate(spec, state)
        return state

    def validate(self, spec, state):
        props, _ = self.clean_props(spec.props)
        if not props["visible"] or props["disabled"]:
            return []
        label = label_of(spec, props)
        value = state.get("value")
        if value is None or value == "":
            return [f"{label} is required."] if props["required"] else []
        if _find(normalize_options(props["options"]), value) is None:
            return [f"{label}: “{display_text(value)}” is not one of the options."]
        return []

    def get_context(self, spec, props, state, attrs):
        current = props["default_value"] if state is None else display_text(state.get("value"))
        options = [
            {**option, "text": display_text(option["value"])}
            for option in normalize_options(props["options"])
        ]
        return {"options": options, "current": current, "default": props["default_value"]}

    def default_state(self, props: dict) -> dict | None:
        value = props.get("default_value")
        return {"value": "" if value is None else value}


def _find(options: list[dict], value: Any) -> dict | None:
    # Posted values are text: "2" picks the option whose value is the number 2.
    text = display_text(value)
    return next((o for o in options if display_text(o["value"]) == text), None)
