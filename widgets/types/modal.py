"""Modal: a dialog, closed until an "open modal" action shows it."""

from __future__ import annotations

from widgets.base import COMMON_PROPS, Prop
from widgets.types.container import ContainerWidget


class ModalWidget(ContainerWidget):
    type = "modal"
    label = "Modal"
    template = "widgets/modal.html"
    props = (Prop("title", "Title", "text", default="Modal"), *COMMON_PROPS)
