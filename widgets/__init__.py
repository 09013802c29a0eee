"""Widget types: per type its properties, events, template, and how its runtime value is
read from a request. See widgets/registry.py and docs/widgets.md."""

from widgets.registry import (
    TYPES,
    Prop,
    RenderAttrs,
    Renderer,
    WidgetSpec,
    WidgetType,
    get_type,
)

__all__ = ["TYPES", "Prop", "RenderAttrs", "Renderer", "WidgetSpec", "WidgetType", "get_type"]
