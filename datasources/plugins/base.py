"""The contract every datasource plugin fills in, as a template method (as in anymail's
backends): the public methods of ``Plugin`` own the flow (check the action, call the
plugin's hooks, turn an unexpected exception into a ``PluginError``) and are never
overridden; a plugin declares its actions and fields and fills in the hooks.

Generic code (the query editor, the outbox, the binding context) only calls the public
methods and reads the declarations, so it holds no knowledge of any one plugin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from django import forms

from bindings import MAX_PASSED
from datasources.errors import FieldError, PluginError
from workspaces.files import FileContent

log = logging.getLogger(__name__)

#: The kinds of field the query editor knows how to show.
FIELD_KINDS = frozenset({"text", "textarea", "toggle", "choice", "files"})


@dataclass(frozen=True)
class HtmlWhen:
    """A field is HTML when another field's evaluated value is one of ``values``
    (compared trimmed and lowercased), e.g. a body when ``body_type`` is ``html``."""

    field: str
    values: frozenset[str]


@dataclass(frozen=True)
class FieldSpec:
    """One field of an action, as the editor shows it and a run evaluates it.

    ``bindable`` fields hold text with ``<< >>`` bindings (the editor checks the names
    they read); ``html`` says whether values bound into the field are escaped as HTML:
    always (True), never (False) or depending on another field (``HtmlWhen``); a
    ``json`` field's text is JSON, and values bound into it are escaped as the inside of
    a JSON string (a bound value cannot add keys).
    A ``choice`` may sit ``beside`` another field (in its label row); ``aliases`` map
    stored spellings onto a choice. Fields with ``shown=False`` are kept as stored but not
    edited in the editor (app files and the API set them). ``check`` validates a literal
    value when the editor saves it.
    """

    name: str
    label: str
    kind: str = "text"
    help: str = ""
    placeholder: str = ""
    required: bool = False
    bindable: bool = True
    html: bool | HtmlWhen = False
    json: bool = False
    default: Any = ""
    choices: tuple[tuple[str, str], ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    beside: str | None = None
    shown: bool = True
    #: Checks a literal value (one without bindings) as the editor saves it, raising
    #: ``FieldError``: a mistake shown at the field, not first at a run.
    check: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"Field {self.name!r}: unknown kind {self.kind!r}.")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"Field {self.name!r}: a choice needs choices.")
        if self.json and self.html:
            raise ValueError(f"Field {self.name!r}: HTML or JSON text, not both.")

    @property
    def max_passed(self) -> int:
        """The largest value a binding that only reads (``<< files1.files >>``) may pass
        into this field: files, as data URLs, up to the attachment limit, for a files
        field; 0 (the binding engine's usual caps) for every other field."""
        return MAX_PASSED if self.kind == "files" else 0

    def choice_of(self, value: Any) -> str:
        """A stored value as one of the choices (the default when it is none of them)."""
        text = str(value or "").strip().lower()
        text = self.aliases.get(text, text)
        keys = [key for key, _ in self.choices]
        return text if text in keys else str(self.default or keys[0])


@dataclass(frozen=True)
class ActionSpec:
    """An action and its fields, in the order the editor shows them. ``fields`` is a
    read-only mapping of name to ``FieldSpec``."""

    name: str
    label: str
    fields: Mapping[str, FieldSpec]
    #: The editor's Preview button, and what its empty response pane says after the
    #: words "Run" and "Preview".
    preview_label: str = "Preview"
    run_help: str = "runs the query for real, with the test values."
    preview_help: str = "shows what a run would do, without doing it."

    def __init__(
        self,
        name: str,
        label: str,
        fields: Sequence[FieldSpec] | Mapping[str, FieldSpec],
        **options: str,
    ) -> None:
        specs = list(fields.values()) if isinstance(fields, Mapping) else list(fields)
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"Action {name!r} declares a field twice.")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "fields", MappingProxyType({s.name: s for s in specs}))
        for key, value in options.items():
            if key not in ("preview_label", "run_help", "preview_help"):
                raise TypeError(f"ActionSpec has no option {key!r}")
            object.__setattr__(self, key, value)

    def label_of(self, name: str) -> str:
        spec = self.fields.get(name)
        return spec.label if spec else name


@dataclass
class Prepared:
    """An action's fields checked and ready to store: ``fields`` is JSON, ``files`` are
    kept beside it, so that every retry sends the same bytes.

    A plugin may also build what it will send once, here (``payload``, with what it
    needs beside it in ``payload_meta``, JSON): it is stored with the run and handed to
    ``execute`` as ``context.payload`` and ``context.payload_meta``, so that the worker
    neither builds nor checks it again.

    ``file_fields`` names the field each of ``files`` came from, in order (empty: all
    ``attachments``), so that an error about the files (a merge's rows must send the same
    ones) names the field that differs."""

    fields: dict
    files: list[FileContent] = field(default_factory=list)
    payload: bytes | None = None
    payload_meta: dict = field(default_factory=dict)
    file_fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str


@dataclass
class ActionResult:
    """What an action returns: ``data`` is what bindings see as ``query.data``."""

    data: Any
    details: dict = field(default_factory=dict)


#: The ``code`` of the PluginError that stands for an exception a hook did not expect.
UNEXPECTED = "unexpected"


class ConfigForm(forms.Form):
    """The form that edits a plugin's settings. A secret left blank keeps the stored one
    (``stored_secret``); ``stored`` gives what the datasource keeps, ``settings`` the
    typed settings the plugin runs with."""

    def __init__(self, *args: Any, stored_secret: str = "", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.stored_secret = stored_secret

    def stored(self) -> tuple[dict, str]:
        """(config, secret) to store, from the cleaned form."""
        raise NotImplementedError

    def settings(self) -> Any:
        """The typed settings, from the cleaned form (Test connection uses them)."""
        raise NotImplementedError


class Plugin:
    kind: ClassVar[str]
    label: ClassVar[str]
    #: The form that edits this plugin's settings; it also builds the settings object.
    config_form: ClassVar[type[ConfigForm]]
    #: The template (under templates/) that lays out ``config_form`` on the datasource
    #: page; None lays its fields out one under the other.
    config_template: ClassVar[str | None] = None
    #: A template included after the settings form on the datasource page, for forms of
    #: the plugin's own (a form cannot hold another); None adds nothing.
    page_template: ClassVar[str | None] = None
    #: The template that shows a preview in the query editor; None shows it as JSON.
    preview_template: ClassVar[str | None] = None
    actions: ClassVar[dict[str, ActionSpec]]

    # ------------------------------------------------------------------ the flow

    def action_spec(self, action: str) -> ActionSpec:
        """The declaration of ``action``; ``PluginError`` on the action field if none."""
        try:
            return self.actions[action]
        except KeyError:
            raise PluginError(f"{self.label} has no action {action!r}.", field="action") from None

    @property
    def first_action(self) -> str:
        """What a new query does until someone says otherwise."""
        return next(iter(self.actions))

    def prepare_run(self, action: str, fields: dict, context: Any = None) -> Prepared:
        """Check evaluated ``fields`` before a run is stored. Raises ``PluginError``
        (``FieldError`` naming the field) and nothing else."""
        self.action_spec(action)
        return self._guarded("check this query", self.prepare, action, fields, context)

    def run(self, settings: Any, action: str, fields: dict, context: Any = None) -> ActionResult:
        """Run ``action`` with prepared ``fields``. Raises ``PluginError`` (its
        subclasses say whether to retry) and nothing else: an unexpected exception
        becomes a permanent ``PluginError`` with code ``UNEXPECTED``, caused by it."""
        self.action_spec(action)
        return self._guarded("run this query", self.execute, settings, action, fields, context)

    @property
    def has_preview(self) -> bool:
        return type(self).preview is not Plugin.preview

    def preview_run(self, action: str, fields: dict, context: Any = None) -> dict:
        """What running ``action`` would do, without doing it; ``PluginError`` with code
        ``no_preview`` when the plugin cannot say."""
        self.action_spec(action)
        if not self.has_preview:
            raise PluginError(f"{self.label} queries have no preview.", code="no_preview")
        return self._guarded("preview this query", self.preview, action, fields, context)

    def late_fields(self, action: str) -> frozenset[str]:
        """Fields whose HTML-ness depends on other fields: evaluated after them."""
        spec = self.action_spec(action)
        return frozenset(n for n, f in spec.fields.items() if isinstance(f.html, HtmlWhen))

    def html_fields(self, action: str, fields: dict) -> set[str]:
        """Which fields are HTML, given the other evaluated ``fields``: values bound
        into them are escaped."""
        html = set()
        for name, spec in self.action_spec(action).fields.items():
            if isinstance(spec.html, HtmlWhen):
                value = str(fields.get(spec.html.field) or "").strip().lower()
                if value in spec.html.values:
                    html.add(name)
            elif spec.html:
                html.add(name)
        return html

    def _guarded(self, doing: str, hook, *args):
        try:
            return hook(*args)
        except PluginError:
            raise
        except Exception as exc:
            log.exception("%s plugin failed to %s", self.kind, doing)
            raise PluginError(
                f"Kiln failed to run this query ({type(exc).__name__}).", code=UNEXPECTED
            ) from exc

    # ------------------------------------------------------------------ declarations

    @property
    def secret_fields(self) -> tuple[str, ...]:
        """The settings that are secrets: never rendered back, never exported. By
        default the config form's password inputs."""
        return tuple(
            name
            for name, form_field in self.config_form.base_fields.items()
            if isinstance(form_field.widget, forms.PasswordInput)
        )

    def field_label(self, action: str, name: str) -> str:
        """What a person calls the field ``name`` a run's error is on: the label of the
        action's field or of the setting (an error on the connection names a setting,
        e.g. ``port``); the name itself when neither has it."""
        spec = self.actions.get(action)
        if spec is not None and name in spec.fields:
            return spec.fields[name].label
        setting = self.config_form.base_fields.get(name)
        if setting is not None and setting.label:
            return str(setting.label)
        return name

    def config_summary(self, config: dict) -> str:
        """A datasource's settings in a few words, for lists."""
        return ""

    def setup_warning(self, config: dict, secret: str) -> str:
        """What a saved datasource still lacks before it can be used (e.g. an OAuth2 one
        with no refresh token), shown on its page and in the list; "" when nothing."""
        return ""

    def sandbox_note(self, config: dict) -> str:
        """What a datasource in a sandbox mode does instead of the real thing, shown as a
        banner wherever it is used; "" when it is not sandboxed (or cannot be)."""
        return ""

    def run_summary(self, action: str, fields: dict) -> dict[str, Any]:
        """A run's own columns in ``<< query.runs >>`` rows (e.g. a Table): by default
        the action's required fields as stored."""
        spec = self.actions.get(action)
        if spec is None:
            return {}
        return {n: fields.get(n, "") for n, f in spec.fields.items() if f.required}

    # ------------------------------------------------------------------ hooks

    def load_config(self, config: dict, secret: str) -> Any:
        """The typed settings from a datasource's stored config and secret."""
        raise NotImplementedError

    def test_connection(self, settings: Any) -> ConnectionCheck:
        raise NotImplementedError

    def prepare(self, action: str, fields: dict, context: Any = None) -> Prepared:
        """Check evaluated ``fields``; raise ``FieldError``. By default: every required
        field has a value, and the declared fields are stored as JSON."""
        spec = self.action_spec(action)
        for name, declared in spec.fields.items():
            value = fields.get(name)
            if declared.required and (value is None or value == "" or value == []):
                raise FieldError(name, f"{declared.label} is required.")
        stored = {name: jsonable(fields[name]) for name in spec.fields if name in fields}
        return Prepared(fields=stored)

    def preview(self, action: str, fields: dict, context: Any = None) -> dict:
        """What running ``action`` with evaluated ``fields`` would do, without doing it
        (the editor's Preview). Checks the fields as ``prepare`` does; the shape of the
        result is the plugin's own (``preview_template`` shows it). Optional."""
        raise NotImplementedError

    def execute(
        self, settings: Any, action: str, fields: dict, context: Any = None
    ) -> ActionResult:
        """Run ``action`` with prepared ``fields``; raise a ``PluginError`` on failure.

        ``context.files`` holds the prepared files (each with ``name``,
        ``content_type``, ``size``, ``data`` and ``chunks(n)``, which reads it in pieces
        of n bytes), ``context.payload`` and ``context.payload_meta`` what ``prepare``
        built (None and {} for a run stored without them: build from ``fields``)."""
        raise NotImplementedError


def jsonable(value: Any) -> Any:
    """An evaluated value as stored on a run: JSON values, anything else as text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
