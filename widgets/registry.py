"""The widget type registry.

A widget type is one module under ``widgets/types/`` with a ``WidgetType`` subclass, a
template in ``templates/widgets/`` and one line in ``_TYPES`` below (docs/widgets.md has
the checklist).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from widgets.base import Prop, RenderAttrs, Renderer, WidgetSpec, WidgetType

__all__ = ["TYPES", "Prop", "RenderAttrs", "Renderer", "WidgetSpec", "WidgetType", "get_type"]

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


class _Registry(Mapping[str, WidgetType]):
    """The widget types by name, each class imported on first use (a type module may
    import this registry to look up its children's types)."""

    def __init__(self, paths: dict[str, str]):
        self._paths = paths
        self._types: dict[str, WidgetType] | None = None

    def _loaded(self) -> dict[str, WidgetType]:
        if self._types is None:
            types = {}
            for name, path in self._paths.items():
                widget_type = import_string(path)()
                if widget_type.type != name:
                    raise ImproperlyConfigured(f"{path} says its type is {widget_type.type!r}")
                types[name] = widget_type
            self._types = types
        return self._types

    def __getitem__(self, name: str) -> WidgetType:
        return self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._paths)


TYPES: Mapping[str, WidgetType] = _Registry(_TYPES)


def get_type(name: str) -> WidgetType:
    try:
        return TYPES[name]
    except KeyError:
        raise LookupError(f"No widget type {name!r}") from None
