"""What every widget type is made of: its properties, the spec the runtime hands it, and
the base class whose hooks each type fills in (read state, validate, render).

A widget type never evaluates bindings and never touches the database: the runtime
evaluates properties and gives them here already merged with the defaults.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from django.http import QueryDict
from django.template import Context, Engine, Template
from django.template.loader import render_to_string
from django.utils.datastructures import MultiValueDict
from django.utils.safestring import SafeString, mark_safe

from core.text import as_bool
from widgets.values import display_text, parse_number

PROP_KINDS = ("text", "multiline", "number", "bool", "select", "json", "list")


@dataclass(frozen=True)
class Prop:
    """One property of a widget type, as the editor shows it and the runtime reads it."""

    name: str
    label: str
    kind: str  # one of PROP_KINDS
    default: Any = None
    bindable: bool = True
    choices: tuple[str, ...] = ()
    help: str = ""

    def __post_init__(self):
        if self.kind not in PROP_KINDS:
            raise ValueError(f"Prop {self.name!r}: unknown kind {self.kind!r}")

    def default_value(self) -> Any:
        # Defaults may be lists or dicts: every widget gets its own copy.
        if isinstance(self.default, list | dict):
            return copy.deepcopy(self.default)
        return self.default

    def clean(self, value: Any) -> Any:
        """``value`` as this kind of property; ``ValueError`` with a message for the
        builder when it cannot be read (the caller falls back to the default)."""
        kind = self.kind
        if kind in ("text", "multiline"):
            return display_text(value)
        if kind == "number":
            if value is None or (isinstance(value, str) and not value.strip()):
                return None
            number = parse_number(value)
            if number is None:
                raise ValueError(f"“{display_text(value)}” is not a number.")
            return number
        if kind == "bool":
            return as_bool(value)
        if kind == "select":
            text = display_text(value)
            if text not in self.choices:
                raise ValueError(f"“{text}” is not one of: {', '.join(self.choices)}.")
            return text
        if kind == "json":
            if isinstance(value, str):
                if not value.strip():
                    return None
                try:
                    return json.loads(value)
                except ValueError:
                    raise ValueError("is not valid JSON.") from None
            return value
        # kind == "list"
        if value is None:
            return []
        if isinstance(value, list | tuple):
            return list(value)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    parsed = json.loads(text)
                except ValueError:
                    raise ValueError("is not a valid JSON list.") from None
                if isinstance(parsed, list):
                    return parsed
            # "a, b" or one item a line, as people type lists into a text box.
            return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]
        return [value]


@dataclass(frozen=True)
class WidgetSpec:
    """One widget as the runtime hands it over: properties already evaluated."""

    name: str
    type: str
    props: dict
    children: tuple[WidgetSpec, ...] = ()


NO_ATTRS = SafeString("")


class RenderAttrs:
    """htmx attributes from the runtime; templates paste them verbatim.

    ``refresh`` (what redraws the widget) may be given as a function, called when a
    template first reads it: most widget types never do, and a page of 50 widgets need
    not render 50 of them."""

    __slots__ = ("_refresh", "events")

    def __init__(
        self,
        events: dict[str, SafeString] | None = None,
        refresh: SafeString | Callable[[], SafeString] = NO_ATTRS,
    ):
        self.events = {} if events is None else events
        self._refresh = refresh

    @property
    def refresh(self) -> SafeString:
        if callable(self._refresh):
            self._refresh = self._refresh()
        return self._refresh


class Renderer:
    """Renders the templates of one page (or one fragment of it) in one Django template
    context: each template, and every template they include, is looked up once per page
    rather than once per widget (Django keeps included templates in the context's
    render state). The values of one render are pushed for it and popped after it, so
    no template sees another's."""

    def __init__(self) -> None:
        self._context = Context(autoescape=True)
        self._templates: dict[str, Template] = {}

    def render(self, name: str, values: dict[str, Any]) -> SafeString:
        template = self._templates.get(name)
        if template is None:
            template = self._templates[name] = Engine.get_default().get_template(name)
        with self._context.push(values):
            return template.render(self._context)


# Every widget has these; input-like ones also have FIELD_PROPS.
VISIBLE = Prop("visible", "Visible", "bool", default=True)
TOOLTIP = Prop("tooltip", "Tooltip", "text", default="", help="Shown when hovering the widget.")
COMMON_PROPS = (VISIBLE, TOOLTIP)


def field_props(*, default_kind: str = "text", placeholder: bool = True) -> tuple[Prop, ...]:
    """Label, placeholder, default value, required and disabled, for input-like widgets."""
    props = [Prop("label", "Label", "text", default="")]
    if placeholder:
        props.append(Prop("placeholder", "Placeholder", "text", default=""))
    default = False if default_kind == "bool" else ""
    props += [
        Prop("default_value", "Default value", default_kind, default=default),
        Prop("required", "Required", "bool", default=False),
        Prop("disabled", "Disabled", "bool", default=False),
    ]
    return tuple(props)


class WidgetType:
    """A kind of widget. Subclasses set the class attributes and fill in the hooks;
    ``render`` is a template method around ``get_context``."""

    type: ClassVar[str]
    label: ClassVar[str]
    props: ClassVar[tuple[Prop, ...]]
    events: ClassVar[tuple[str, ...]] = ()
    template: ClassVar[str]
    container: ClassVar[bool] = False
    #: Which key of this widget's state an enclosing form puts in ``form.data``
    #: (None: the widget adds nothing, like a Text or a Button).
    value_key: ClassVar[str | None] = None
    #: An event inside it checks its fields first (a Form), nothing runs if one is wrong.
    validates_children: ClassVar[bool] = False
    #: Opened and closed by the open_modal / close_modal actions.
    is_modal: ClassVar[bool] = False
    #: (w, h) of a new widget of this type on the page's 12-column grid.
    size: ClassVar[tuple[int, int]] = (4, 2)
    #: Properties a new widget starts with, beyond the defaults (a field gets a label, so
    #: that a freshly dropped input is not an unlabelled box).
    initial_properties: ClassVar[dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"<WidgetType {self.type}>"

    @property
    def icon_template(self) -> str:
        """The palette's icon: the inside of a 24×24 stroked SVG, in a template."""
        return f"widgets/icons/{self.type}.svg"

    def default_state(self, props: dict) -> dict | None:
        """The state a page would send for this widget if nobody touched it, from its
        properties (``default_value`` evaluated); None for a widget without state. A
        container's ``data`` is left for the caller to gather from its children."""
        return None

    def posted_default(self, default: Any) -> str | None:
        """``default_value`` as the browser would post it for this widget's control, or
        None when the control posts nothing (an unchecked box)."""
        return str(default)

    # Properties -----------------------------------------------------------------------
    def prop(self, name: str) -> Prop | None:
        return next((p for p in self.props if p.name == name), None)

    def props_with_defaults(self, raw: dict) -> dict:
        """Every property, the given value where there is one, else the default.

        Keys this type does not know are kept: a property renamed in a later version
        must not vanish from a saved widget."""
        merged = {p.name: p.default_value() for p in self.props}
        merged.update(raw or {})
        return merged

    def clean_props(self, raw: dict, failed: dict | None = None) -> tuple[dict, dict[str, str]]:
        """Properties read as their kinds, and the ones that could not be read.

        A property in ``failed`` (its binding failed) or one that cannot be read gets its
        default, so the widget still renders."""
        props = dict(raw or {})
        problems: dict[str, str] = {}
        for prop in self.props:
            if prop.name in (failed or {}) or prop.name not in props:
                props[prop.name] = prop.default_value()
                continue
            try:
                props[prop.name] = prop.clean(props[prop.name])
            except ValueError as exc:
                problems[prop.name] = str(exc)
                props[prop.name] = prop.default_value()
        problems.update(self.check_props(props))
        return props, problems

    def check_props(self, props: dict) -> dict[str, str]:
        """Hook: problems with property values that their kind alone cannot catch."""
        return {}

    # State ----------------------------------------------------------------------------
    def read_state(
        self,
        spec: WidgetSpec,
        data: QueryDict,
        files: MultiValueDict,
        child_states: dict[str, dict],
    ) -> dict:
        """What bindings see as ``<name>.<key>``, from a posted page."""
        return {}

    def validate(self, spec: WidgetSpec, state: dict) -> list[str]:
        """Messages shown under the widget; empty when the state is acceptable."""
        return []

    def form_data(self, name: str, state: dict) -> dict:
        """What this widget adds to an enclosing form's ``data``."""
        if self.value_key and self.value_key in state:
            return {name: state[self.value_key]}
        return {}

    # Rendering ------------------------------------------------------------------------
    def render(
        self,
        spec: WidgetSpec,
        *,
        state: dict | None,
        errors: list[str],
        prop_errors: dict[str, str],
        children_html: list[str],
        attrs: RenderAttrs,
        renderer: Renderer | None = None,
    ) -> SafeString:
        """``renderer``: the page's, when the widget is one of many rendered together."""
        props, problems = self.clean_props(spec.props, failed=prop_errors)
        if not props.get("visible", True):
            return SafeString("")
        warnings = {**problems, **(prop_errors or {})}
        context = {
            "widget": self,
            "name": spec.name,
            "props": props,
            "state": state,
            "errors": list(errors or ()),
            "binding_errors": [(self._label(name), message) for name, message in warnings.items()],
            # The runtime's own HTML for the children, rendered already.
            "children_html": [mark_safe(html) for html in children_html or ()],
            "attrs": attrs or RenderAttrs(),
        }
        context.update(self.get_context(spec, props, state, attrs or RenderAttrs()))
        if renderer is not None:
            return renderer.render(self.template, context)
        return render_to_string(self.template, context)

    def _label(self, name: str) -> str:
        prop = self.prop(name)
        return prop.label if prop is not None else name

    def get_context(
        self, spec: WidgetSpec, props: dict, state: dict | None, attrs: RenderAttrs
    ) -> dict:
        """Hook: what this type's template needs beyond the common context."""
        return {}


def label_of(spec: WidgetSpec, props: dict) -> str:
    """The name a message gives a widget: its label, else its name."""
    return str(props.get("label") or "").strip() or spec.name


def posted(data: QueryDict | None, key: str) -> str | None:
    """The last value posted under ``key`` (a clicked button's value comes after the
    hidden input of the same name), or None."""
    if data is None or key not in data:
        return None
    # A plain dict (an API caller's inputs) has one value per key.
    values = data.getlist(key) if isinstance(data, MultiValueDict) else [data[key]]
    return values[-1] if values else None
