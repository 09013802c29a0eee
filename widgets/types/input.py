"""Input: one line of text, an email address, a number, a password, or several lines."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

from widgets.base import COMMON_PROPS, Prop, WidgetType, field_props, label_of, posted
from widgets.values import format_number, parse_number

INPUT_TYPES = ("text", "email", "number", "password", "multiline")


class InputWidget(WidgetType):
    type = "input"
    label = "Input"
    size = (4, 2)
    initial_properties = {"label": "Label"}
    template = "widgets/input.html"
    events = ("change",)
    value_key = "value"
    props = (
        Prop("input_type", "Type", "select", default="text", choices=INPUT_TYPES),
        *field_props(),
        Prop(
            "regex",
            "Regex",
            "text",
            default="",
            help="The whole value must match (Python syntax), e.g. ^[A-Z]{2}\\d{4}$.",
        ),
        Prop("regex_message", "Regex message", "text", default=""),
        Prop("min", "Min", "number", help="Smallest number, or fewest characters for text."),
        Prop("max", "Max", "number", help="Largest number, or most characters for text."),
        Prop(
            "error_message",
            "Error message",
            "text",
            default="",
            help="Replaces the message when the value is not valid (not when it is missing).",
        ),
        *COMMON_PROPS,
    )

    def check_props(self, props):
        if props["regex"]:
            try:
                re.compile(props["regex"])
            except re.error as exc:
                return {"regex": f"“{props['regex']}” is not a valid regular expression: {exc}."}
        return {}

    def read_state(self, spec, data, files, child_states):
        props, _ = self.clean_props(spec.props)
        text = None if props["disabled"] else posted(data, spec.name)
        if text is None:
            # Not posted: a disabled or hidden input, or the page's first render.
            text = props["default_value"]
        state = {"value": self._typed(props, text), "text": text}
        state["isValid"] = not self.validate(spec, state)
        return state

    @staticmethod
    def _typed(props: dict, text: str):
        if props["input_type"] == "number":
            number = parse_number(text)
            return text if number is None else number
        if props["input_type"] == "email":
            return text.strip()
        return text

    def validate(self, spec, state):
        props, problems = self.clean_props(spec.props)
        # A user cannot fix what they cannot see or change.
        if not props["visible"] or props["disabled"]:
            return []
        label = label_of(spec, props)
        text = state.get("text")
        if text is None:
            value = state.get("value")
            text = "" if value is None else str(value)
        if not text.strip():
            return [f"{label} is required."] if props["required"] else []

        custom = props["error_message"]
        kind = props["input_type"]
        low, high = props["min"], props["max"]
        if kind == "number":
            number = parse_number(text)
            if number is None:
                return [custom or f"{label} must be a number."]
            if low is not None and number < low:
                return [custom or f"{label} must be at least {format_number(low)}."]
            if high is not None and number > high:
                return [custom or f"{label} must be at most {format_number(high)}."]
        else:
            if kind == "email" and not _is_email(text.strip()):
                return [custom or "Enter a valid email address."]
            if low is not None and len(text) < low:
                return [custom or f"{label} must be at least {_chars(low)}."]
            if high is not None and len(text) > high:
                return [custom or f"{label} must be at most {_chars(high)}."]
        regex = props["regex"]
        if regex and "regex" not in problems and not re.fullmatch(regex, text):
            return [props["regex_message"] or custom or f"{label} is not in the expected format."]
        return []

    def get_context(self, spec, props, state, attrs):
        kind = props["input_type"]
        if state is None:
            value = props["default_value"]
        else:
            value = state.get("text")
            if value is None:
                value = "" if state.get("value") is None else str(state["value"])
        if kind == "password":
            # Like Django's PasswordInput: a typed password is never sent back in HTML.
            value = ""
        limits = {}
        if kind == "number":
            limits = {k: format_number(props[k]) for k in ("min", "max") if props[k] is not None}
        html_type = {"multiline": None, "number": "number", "email": "email"}.get(kind, kind)
        return {
            "value": value,
            "html_type": html_type,
            "limits": limits,
            "default": "" if kind == "password" else props["default_value"],
        }

    def default_state(self, props: dict) -> dict | None:
        value = props.get("default_value")
        return {"value": "" if value is None else value}


def _chars(n: int | float) -> str:
    return f"{format_number(n)} character{'' if n == 1 else 's'}"


def _is_email(text: str) -> bool:
    try:
        # Syntax only, as the SMTP plugin checks it: internal domains and .test pass.
        validate_email(
            text,
            check_deliverability=False,
            allow_smtputf8=True,
            globally_deliverable=False,
            test_environment=True,
        )
    except EmailNotValidError:
        return False
    return True
