"""Form: groups fields, gathers their values in ``data`` and has its own submit button.

The page is already one ``<form id="kiln-page">``, so a Form is a ``<div role="form">``;
its submit button runs the "submit" actions, and the reset button puts its fields back
to their default values in the browser.
"""

from __future__ import annotations

from widgets.base import COMMON_PROPS, Prop, WidgetType
from widgets.types.container import gather


class FormWidget(WidgetType):
    type = "form"
    label = "Form"
    validates_children = True
    size = (6, 7)
    template = "widgets/form.html"
    container = True
    events = ("submit",)
    value_key = "data"
    props = (
        Prop("title", "Title", "text", default="Form"),
        Prop("submit_label", "Submit label", "text", default="Submit"),
        Prop("reset_label", "Reset label", "text", default="Reset"),
        Prop("show_reset", "Show reset button", "bool", default=True),
        *COMMON_PROPS,
    )

    def read_state(self, spec, data, files, child_states):
        return gather(spec, child_states)

    def default_state(self, props: dict) -> dict | None:
        return {"data": {}}
