"""Container: a box that groups widgets. Its ``data`` gathers its children's values, so
that a form around it sees them too."""

from __future__ import annotations

from widgets.base import COMMON_PROPS, Prop, WidgetSpec, WidgetType
from widgets.registry import get_type


def gather(spec: WidgetSpec, child_states: dict[str, dict]) -> dict:
    """``data`` (each child's main value by name) and ``isValid`` from the children."""
    data: dict = {}
    valid = True
    for child in spec.children:
        state = child_states.get(child.name)
        if state is None:
            continue
        try:
            child_type = get_type(child.type)
        except LookupError:
            continue
        data.update(child_type.form_data(child.name, state))
        valid = valid and state.get("isValid", True) is not False
    return {"data": data, "isValid": valid}


class ContainerWidget(WidgetType):
    type = "container"
    label = "Container"
    size = (6, 4)
    template = "widgets/container.html"
    container = True
    props = (Prop("title", "Title", "text", default=""), *COMMON_PROPS)

    def read_state(self, spec, data, files, child_states):
        return gather(spec, child_states)

    def form_data(self, name, state):
        # A box inside a form is layout only: its fields are the form's fields.
        return dict(state.get("data") or {})

    def default_state(self, props: dict) -> dict | None:
        return {"data": {}}
