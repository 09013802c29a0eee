"""The widget type registry.

A widget type is one module under ``widgets/types/`` with a ``WidgetType`` subclass, a
template in ``templates/widgets/`` and one line in ``_TYPES`` below (docs/widgets.md has
the checklist).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from widgets.base import Prop, RenderAttrs, WidgetSpec, WidgetType

__all__ = ["TYPES", "Prop", "RenderAttrs", "WidgetSpec", "WidgetType", "get_type"]

_TYPES: dict[str, str] = {
    "text": "widgets.types.text.TextWidget",
    "input": "widgets.types.input.InputWidget",
    "select": "widgets.types.select.SelectWidget",
    "checkbox": "widgets.types.checkbox.CheckboxWidget",
    "button": "widgets.types.button.ButtonWidget",
    "form": "widgets.types.form.FormWidget",
    "filepicker": "widgets.types.filepicker.FilePickerWidget",
    "table": "widgets.types.table.TableWidget",
    "container": "widgets.types.container.ContainerWidget",
    "modal": "widgets.types.modal.ModalWidget",
}


def _load(paths: dict[str, str]) -> dict[str, WidgetType]:
    types = {}
    for name, path in paths.items():
        widget_type = import_string(path)()
        if widget_type.type != name:
            raise ImproperlyConfigured(f"{path} says its type is {widget_type.type!r}")
        types[name] = widget_type
    return types


TYPES: dict[str, WidgetType] = _load(_TYPES)


def get_type(name: str) -> WidgetType:
    try:
        return TYPES[name]
    except KeyError:
        raise LookupError(f"No widget type {name!r}") from None
