"""Text: a paragraph, a heading or a muted note, often bound to a query's result."""

from __future__ import annotations

from widgets.base import COMMON_PROPS, Prop, WidgetType


class TextWidget(WidgetType):
    type = "text"
    label = "Text"
    size = (4, 1)
    template = "widgets/text.html"
    props = (
        Prop("text", "Text", "multiline", default="Text"),
        Prop("style", "Style", "select", default="body", choices=("body", "heading", "muted")),
        *COMMON_PROPS,
    )

    def read_state(self, spec, data, files, child_states):
        props, _ = self.clean_props(spec.props)
        return {"text": props["text"]}
