"""Button: runs its click actions. A "submit" button with no click actions of its own
submits the form it is in; a "reset" one resets it."""

from __future__ import annotations

from widgets.base import COMMON_PROPS, Prop, WidgetType


class ButtonWidget(WidgetType):
    type = "button"
    label = "Button"
    size = (2, 1)
    template = "widgets/button.html"
    events = ("click",)
    props = (
        Prop("text", "Text", "text", default="Submit"),
        Prop(
            "style",
            "Style",
            "select",
            default="primary",
            choices=("primary", "secondary", "danger"),
        ),
        Prop(
            "button_type",
            "Button type",
            "select",
            default="button",
            bindable=False,
            choices=("button", "submit", "reset"),
            help="Inside a form and with no click actions: submit or reset that form.",
        ),
        Prop("disabled", "Disabled", "bool", default=False),
        *COMMON_PROPS,
    )

    def read_state(self, spec, data, files, child_states):
        props, _ = self.clean_props(spec.props)
        return {"text": props["text"]}
