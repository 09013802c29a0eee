"""Modal: a dialog, closed until an "open modal" action shows it."""

from __future__ import annotations

from widgets.base import COMMON_PROPS, Prop
from widgets.types.container import ContainerWidget


class ModalWidget(ContainerWidget):
    type = "modal"
    label = "Modal"
    is_modal = True
    size = (6, 4)
    template = "widgets/modal.html"
    props = (Prop("title", "Title", "text", default="Modal"), *COMMON_PROPS)

    def default_state(self, props: dict) -> dict | None:
        # A modal holds no form data of its own.
        return None
