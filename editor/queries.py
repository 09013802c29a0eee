"""The query editor: an app's queries, and one query's fields with warnings for bindings
that read unknown names, test values, Run (a real run through the outbox) and Preview
(the action checked as a run would, but not done).

The form is built from the fields the query's plugin declares for its action
(``ActionSpec`` in datasources/plugins/base.py): labels, help, placeholders, required
markers, toggles and choices; nothing here knows any one plugin.

Every view needs the editor role (``get_app_for_editor``: outsiders 404, viewers 403).
Panes are swapped with htmx; without JavaScript the same views answer plain forms with
whole pages. docs/query-editor.md is the user's guide.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms import BoundField
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from bindings import Attributes, BindingError, check_names, evaluate, has_bindings
from bindings.namespace import MERGE_NAMES, names_in_scope
from builder.access import get_app_for_editor
from builder.models import App, Query, Widget
from builder.names import validate_identifier
from builder.tree import Tree
from core.text import as_bool
from datasources.errors import FieldError, PluginError
from datasources.models import Datasource
from datasources.plugins.base import ActionSpec, FieldSpec
from queries.context import binding_context, check_inputs
from queries.errors import RunLimitError, RunRequestError
from queries.execution import create_run, evaluate_query_fields
from queries.merge import preview_merge
from queries.models import QueryRun
from queries.schedule import parse_send_at
from widgets import get_type
from workspaces import audit
from workspaces.audit import Action

from . import renames
from .canvas_render import attributes_of, suggestions

TEMPLATE_LIST = "editor/queries/list.html"
TEMPLATE_EDITOR = "editor/queries/editor.html"

#: How long Run waits for the run to end before showing it as still going.
RUN_WAIT_SECONDS = 15.0
#: Names every binding may read besides widgets and queries (queries/context.py).
TEST_VALUES_LABEL = "Test values"
#: The editor's own fields: an action's fields must not be named like them.
OWN_FIELDS = frozenset(
    {"name", "datasource", "run_on_page_load", "confirm_before_run", "timeout_seconds"}
    | {"confirm_message", "send_at", "test_values", "for_each", "confirmed"}
)
#: The rows whose messages a merge's Preview shows.
MERGE_PREVIEW_ROWS = 3
#: Kinds of field shown as text with << >> bindings.
TEXT_KINDS = frozenset({"text", "textarea", "files"})


def action_spec(query: Query) -> ActionSpec:
    """The declaration of the query's action; an unknown one shows no fields."""
    return query.datasource.plugin.actions.get(query.action) or ActionSpec(
        query.action, query.action, ()
    )


def shown_fields(spec: ActionSpec) -> list[FieldSpec]:
    """The action's fields the editor shows, in the declared order."""
    return [f for f in spec.fields.values() if f.shown and f.name not in OWN_FIELDS]


def text_fields(spec: ActionSpec) -> list[str]:
    """The shown fields that hold text with << >> bindings."""
    return [f.name for f in shown_fields(spec) if f.kind in TEXT_KINDS]


# ---------------------------------------------------------------------- forms


def _datasources(app: App):
    return Datasource.objects.filter(workspace=app.workspace).order_by("name")


class _NameMixin:
    """A query's name: an identifier, unique among the app's queries and widgets (both
    are names in the binding context, and a clash would hide one of them)."""

    app: App
    query: Query | None = None

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        validate_identifier(name)
        others = Query.objects.filter(app=self.app, name=name)
        if self.query is not None:
            others = others.exclude(pk=self.query.pk)
        if others.exists():
            raise ValidationError(f"There is already a query named “{name}” in this app.")
        widget = Widget.objects.filter(page__app=self.app, name=name).select_related("page").first()
        if widget is not None:
            raise ValidationError(
                f"“{name}” is the name of a widget on the page “{widget.page.name}”; "
                "choose another name."
            )
        return name


def clean_send_at(text: str) -> str:
    """A send_at as typed: with bindings it is read at run time; without, it must be a
    date and time ahead (queries/schedule.py), or the query could never run."""
    if not text.strip() or has_bindings(text):
        return text
    try:
        parse_send_at(text)
    except RunRequestError as exc:
        raise ValidationError(exc.message.removeprefix("send_at: ")) from None
    return text


class NewQueryForm(_NameMixin, forms.Form):
    name = forms.CharField(
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    datasource = forms.ModelChoiceField(queryset=Datasource.objects.none(), empty_label=None)

    def __init__(self, *args, app: App, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app
        self.fields["datasource"].queryset = _datasources(app)
        self.fields["name"].widget.attrs["placeholder"] = "send_welcome"


class QueryForm(_NameMixin, forms.Form):
    """The editor's form: name and datasource, the action's fields (text fields as raw
    text), the options. ``test_values`` rides along (Run and Preview read it) but is
    not stored."""

    name = forms.CharField(
        max_length=64,
        help_text="Renaming changes the bindings and events that use the old name.",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "class": "qe-name"}
        ),
    )
    datasource = forms.ModelChoiceField(queryset=Datasource.objects.none(), empty_label=None)
    run_on_page_load = forms.BooleanField(required=False, label="Run on page load")
    confirm_before_run = forms.BooleanField(
        required=False, label="Ask for confirmation before running"
    )
    confirm_message = forms.CharField(
        required=False,
        max_length=200,
        label="Confirmation message",
        help_text="What the dialog asks, e.g. “Send this message?” Empty: “Are you sure "
        "you want to continue?”",
    )
    timeout_seconds = forms.IntegerField(
        min_value=1,
        max_value=600,
        label="Timeout (seconds)",
        help_text="The run's whole budget, retries included (1–600).",
    )
    send_at = forms.CharField(
        required=False,
        max_length=200,
        strip=False,
        label="Send at",
        help_text="Empty: at once. A date and time (2026-12-24T09:00, read in the server's "
        "time zone, or with an offset: 2026-12-24T09:00+01:00) or a binding "
        "(<< form1.data.when >>): the run waits, scheduled, until then.",
        widget=forms.TextInput(
            attrs={
                "class": "qe-code",
                "data-bindable": "true",
                "data-value-box": "value-send_at",
                "spellcheck": "false",
                "autocomplete": "off",
                "placeholder": "2026-12-24T09:00",
                "aria-describedby": "help-send_at msgs-send_at",
            }
        ),
    )
    for_each = forms.CharField(
        required=False,
        strip=False,
        max_length=2000,
        label="For each row",
        help_text="A list to send one email per row of; empty: one email. The fields read "
        "the row as << row.email >> and its number (from 0) as << index >>.",
        widget=forms.TextInput(
            attrs={
                "class": "qe-code",
                "data-bindable": "true",
                "data-value-box": "value-for_each",
                "spellcheck": "false",
                "autocomplete": "off",
                "placeholder": "<< table1.data >>",
                "aria-describedby": "msgs-for_each",
            }
        ),
    )
    test_values = forms.CharField(required=False, strip=False, label=TEST_VALUES_LABEL)
    #: Set by ``save``: the name changed.
    renamed = False

    def __init__(self, *args, app: App, query: Query, **kwargs):
        kwargs.setdefault("initial", _initial(query))
        super().__init__(*args, **kwargs)
        self.app = app
        self.query = query
        self.spec = action_spec(query)
        self.fields["datasource"].queryset = _datasources(app)
        for spec in shown_fields(self.spec):
            self.fields[spec.name] = _form_field(spec)
        # The editor's own fields after the action's, as the page lays them out.
        own = (
            "for_each",
            "run_on_page_load",
            "confirm_before_run",
            "confirm_message",
            "send_at",
            "timeout_seconds",
        )
        for key in (*own, "test_values"):
            self.fields[key] = self.fields.pop(key)
        self.fields["test_values"].widget = forms.Textarea(
            attrs={"class": "qe-code", "rows": 12, "spellcheck": "false"}
        )

    def clean_send_at(self) -> str:
        return clean_send_at(self.cleaned_data["send_at"])

    def clean(self) -> dict:
        """Each field's own check (FieldSpec.check) on a literal value: a bound one is
        checked when a run evaluates it."""
        data = super().clean()
        for spec in shown_fields(self.spec):
            value = data.get(spec.name)
            if spec.check is None or not isinstance(value, str) or has_bindings(value):
                continue
            try:
                spec.check(value)
            except FieldError as exc:
                self.add_error(spec.name, exc.message)
        return data

    def save(self) -> bool:
        """Store the cleaned form; True if the page must be drawn anew (the query was
        renamed, or its datasource is of a kind without its action). Fields the editor
        does not show and non-text values left as they were are kept."""
        data = self.cleaned_data
        query = self.query
        fields = dict(query.fields)
        for spec in shown_fields(self.spec):
            key = spec.name
            stored = fields.get(key)
            if spec.kind == "toggle":
                fields[key] = data[key]
            elif spec.kind == "choice":
                fields[key] = data[key] or spec.choice_of(stored)
            elif _unchanged_value(stored, data[key]):
                continue  # a list from the app's code, shown as JSON and left unchanged
            else:
                fields[key] = data[key]
        renamed = query.name != data["name"]
        self.renamed = renamed
        old_name = query.name
        query.name = data["name"]
        query.datasource = data["datasource"]
        plugin = query.datasource.plugin
        if query.action not in plugin.actions:
            # Another kind of datasource: its first action, and the page drawn anew.
            query.action = plugin.first_action
            renamed = True
        query.fields = fields
        if "for_each" in self.data:
            # Absent from a form drawn before the field existed: kept, as unshown fields.
            query.for_each = data["for_each"]
        query.run_on_page_load = data["run_on_page_load"]
        query.confirm_before_run = data["confirm_before_run"]
        query.confirm_message = data["confirm_message"]
        query.timeout_seconds = data["timeout_seconds"]
        query.send_at = data["send_at"]
        with transaction.atomic():
            query.save()
            if self.renamed:
                renames.query_renamed(self.app, old_name, query.name)
                query.refresh_from_db(fields=["fields"])
        return renamed


def _unchanged_value(stored: Any, text: str) -> bool:
    return stored is not None and not isinstance(stored, str) and text == _as_text(stored)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _form_field(spec: FieldSpec) -> forms.Field:
    """The form field that edits one declared field."""
    if spec.kind == "toggle":
        return forms.BooleanField(required=False, label=spec.label)
    if spec.kind == "choice":
        return forms.ChoiceField(
            required=False, choices=list(spec.choices), widget=forms.RadioSelect, label=spec.label
        )
    attrs = {
        "spellcheck": "false",
        "autocomplete": "off",
        "placeholder": spec.placeholder,
        "aria-describedby": f"msgs-{spec.name}",
    }
    if spec.bindable:
        # Names offered while typing and the evaluated value (js/editor-bindings.js).
        attrs = {
            "class": "qe-code",
            "data-bindable": "true",
            "data-value-box": f"value-{spec.name}",
            **attrs,
        }
    if spec.kind == "textarea":
        widget: forms.Widget = forms.Textarea(attrs={**attrs, "rows": 10})
    else:
        widget = forms.TextInput(attrs=attrs)
    return forms.CharField(required=False, strip=False, label=spec.label, widget=widget)


def _initial_value(spec: FieldSpec, stored: Any) -> Any:
    if spec.kind == "toggle":
        return as_bool(spec.default if stored is None else stored)
    if spec.kind == "choice":
        return spec.choice_of(stored)
    return _as_text(spec.default if stored is None else stored)


def _initial(query: Query) -> dict:
    fields = query.fields
    initial = {
        spec.name: _initial_value(spec, fields.get(spec.name))
        for spec in shown_fields(action_spec(query))
    }
    initial.update(
        name=query.name,
        datasource=query.datasource_id,
        for_each=query.for_each,
        run_on_page_load=query.run_on_page_load,
        confirm_before_run=query.confirm_before_run,
        confirm_message=query.confirm_message,
        timeout_seconds=query.timeout_seconds,
        send_at=query.send_at,
    )
    return initial


# ---------------------------------------------------------------------- names and test values


def known_names(app: App, *, merge: bool = False) -> set[str]:
    """What a binding in this app may read: every widget on every page, every query,
    and the context's own names; with ``merge`` (a query with for_each), row and index."""
    widgets = Widget.objects.filter(page__app=app).values_list("name", flat=True)
    queries = Query.objects.filter(app=app).values_list("name", flat=True)
    return set(names_in_scope(widgets, queries, merge=merge))


def attributes(app: App) -> dict[str, Attributes]:
    """What each widget and query of the app offers to ``<< name.key >>``."""
    widgets = Widget.objects.filter(page__app=app).values_list("name", "type")
    queries = Query.objects.filter(app=app).values_list("name", flat=True)
    return attributes_of(widgets, queries)


def app_suggestions(app: App) -> list[str]:
    """Names and ``name.key`` paths offered while typing a binding in the query editor:
    every page's widgets, the app's queries and the context's names."""
    found: list[str] = []
    for page in app.pages.all():
        found += suggestions(page.widget_documents(), [])
    found += suggestions([], list(Query.objects.filter(app=app).values_list("name", flat=True)))
    return list(dict.fromkeys(found))


def field_warnings(
    texts: dict[str, Any],
    known: set[str],
    keys: list[str] | None = None,
    attributes: dict[str, Attributes] | None = None,
) -> dict[str, list[str]]:
    """Per field (of ``keys``, else of ``texts``), its bindings that fail to parse, read a
    name that does not exist, or a key that name does not have."""
    warnings = {}
    for key in texts if keys is None else keys:
        found = check_names(key, texts.get(key) or "", known, attributes=attributes)
        # Shown under the field itself: its name in front would only repeat the label.
        warnings[key] = [w.removeprefix(f"{key}: ") for w in found]
    return warnings


def default_test_values(app: App, user) -> dict[str, dict]:
    """A state for every widget of the app that has one, from its type and default
    value: what the page would send if nobody typed anything."""
    widgets = list(
        Widget.objects.filter(page__app=app).order_by("page__position", "page__id", "y", "x", "id")
    )
    by_id = {widget.pk: widget for widget in widgets}
    tree = Tree((widget.pk, widget.parent_id) for widget in widgets)
    context: dict | None = None

    def default(widget: Widget, name: str) -> Any:
        nonlocal context
        try:
            props = get_type(widget.type).props_with_defaults(widget.properties)
        except LookupError:
            return None
        value = props.get(name)
        if not has_bindings(value):
            return value
        # A bound default (<< user.email >>) is what the page would show for this user.
        if context is None:
            context = binding_context(app, user, {})
        try:
            return evaluate(name, value, context)
        except BindingError:
            return None

    def state(widget: Widget) -> dict | None:
        try:
            widget_type = get_type(widget.type)
        except LookupError:
            return None
        found = widget_type.default_state({"default_value": default(widget, "default_value")})
        if found is not None and widget_type.container:
            found = {**found, "data": data_of(widget)}
        elif found is not None and "data" in found and "data" in widget.properties:
            # A table's rows as the page shows them: what << table1.data >> reads (a
            # merge's For each row, say).
            rows = default(widget, "data")
            found = {**found, "data": rows if isinstance(rows, list) else found["data"]}
        return found

    def data_of(widget: Widget) -> dict:
        data: dict = {}
        for child in (by_id[pk] for pk in tree.children(widget.pk)):
            child_state = state(child)
            if child_state is None:
                continue
            if child.type == "container":
                data.update(child_state["data"])  # layout only: its fields are the form's
                continue
            key = get_type(child.type).value_key
            key = "value" if key == "isChecked" else key
            if key in child_state:
                data[child.name] = child_state[key]
        return data

    values = {}
    for widget in widgets:
        widget_state = state(widget)
        if widget_state is not None:
            values[widget.name] = widget_state
    return values


def _dump(values: dict) -> str:
    return json.dumps(values, indent=2, ensure_ascii=False, default=str)


def parse_test_values(text: str) -> dict[str, dict]:
    """The test values as the inputs of a run; RunRequestError naming Test values."""
    if not text.strip():
        return {}
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunRequestError(
            "test_values",
            f"{TEST_VALUES_LABEL}: invalid JSON ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno}).",
        ) from None
    if not isinstance(values, dict):
        raise RunRequestError(
            "test_values",
            f'{TEST_VALUES_LABEL} must be an object of widget names, such as {{"form1": '
            '{"data": {...}}}.',
        )
    try:
        return check_inputs(values)
    except RunRequestError as exc:
        raise RunRequestError("test_values", f"{TEST_VALUES_LABEL}: {exc.message}") from None


def _session_key(app: App) -> str:
    return f"kiln.query_test_values.{app.pk}"


def _test_values_text(request: HttpRequest, app: App) -> str:
    """The test values last typed in this app's editor, with the defaults of widgets
    added since; else the widgets' defaults."""
    defaults = default_test_values(app, request.user)
    if request.GET.get("defaults") != "1":
        stored = request.session.get(_session_key(app))
        if isinstance(stored, str):
            return _with_new_widgets(stored, defaults)
    return _dump(defaults)


def _with_new_widgets(text: str, defaults: dict[str, dict]) -> str:
    """``text`` (test values as typed) with a default state for each widget it does not
    name: a widget added after they were typed (a Table for a mail merge, say) would
    otherwise be an unknown name in Preview. Text that is not a JSON object is kept as
    typed, to be corrected."""
    try:
        typed = json.loads(text)
    except ValueError:
        return text
    if not isinstance(typed, dict):
        return text
    missing = {name: state for name, state in defaults.items() if name not in typed}
    return _dump({**typed, **missing}) if missing else text


def _remember_test_values(request: HttpRequest, app: App, text: str) -> None:
    request.session[_session_key(app)] = text


# ---------------------------------------------------------------------- page context


@dataclass
class FieldRow:
    """One field of the form with what is shown under it; ``spec`` and ``beside`` (the
    choices shown in its label row) for the action's fields."""

    key: str
    field: BoundField
    help: str = ""
    required: bool = False
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    spec: FieldSpec | None = None
    beside: list[FieldRow] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.field.label

    @property
    def kind(self) -> str:
        return self.spec.kind if self.spec else ""


@dataclass
class Result:
    """What the response pane shows: a run, a preview, or why neither happened."""

    kind: str  # "run", "preview", "merge" (a merge's preview), "confirm" or "error"
    run: QueryRun | None = None
    elapsed_ms: int | None = None
    data_json: str = ""
    preview: dict | None = None
    #: A merge's preview (queries.merge.MergePreview), its count before Run, its progress.
    merge: Any = None
    count: int | None = None
    progress: dict | None = None
    error: str = ""
    field: str = ""
    #: The action's declaration, set when the page is drawn: it names the fields.
    spec: ActionSpec | None = None
    #: The query's datasource and its edit page, set when the page is drawn: an error
    #: on one of its settings is fixed there, not on the query's page.
    datasource: Datasource | None = None
    datasource_url: str = ""

    @property
    def field_label(self) -> str:
        return label_of(self.field, self.spec)

    @property
    def setting_label(self) -> str:
        """The label of the datasource setting the error is on ("Host address" for
        ``host``); "" when the field is the query's own or no setting."""
        if not self.field or self.datasource is None:
            return ""
        if self.spec is not None and self.field in self.spec.fields:
            return ""
        plugin = self.datasource.plugin
        if self.field not in plugin.config_form.base_fields:
            return ""
        return plugin.field_label(self.spec.name if self.spec else "", self.field)

    @property
    def message(self) -> str:
        # Shown under the field's label: a leading "to: " would only repeat it.
        return self.error.removeprefix(f"{self.field}: ") if self.field else self.error

    @property
    def retrying(self) -> bool:
        return self.run is not None and self.run.retrying


def label_of(key: str, spec: ActionSpec | None = None) -> str:
    if not key:
        return ""
    if key == "test_values" or key == "inputs" or key.startswith("inputs."):
        return TEST_VALUES_LABEL
    extra = {
        "name": "Name",
        "datasource": "Datasource",
        "timeout_seconds": "Timeout",
        "send_at": "Send at",
        "fields": "Fields",
        "action": "Action",
    }
    if spec is not None and key in spec.fields:
        return spec.fields[key].label
    return extra.get(key) or key


def _name_the_datasource(result: Result, app: App, query: Query) -> None:
    """Let the response pane name the datasource of an error on one of its settings, and
    link to its page; the query editor is for the workspace's editors, who may edit its
    datasources, so the link is offered for a datasource of the app's workspace."""
    datasource = query.datasource
    result.datasource = datasource
    if datasource.workspace_id == app.workspace_id:
        result.datasource_url = reverse(
            "datasources:edit", args=[app.workspace.slug, datasource.pk]
        )


def _rows(form: QueryForm, warnings: dict[str, list[str]]) -> dict[str, FieldRow]:
    specs = {spec.name: spec for spec in shown_fields(form.spec)}
    rows = {}
    for name in form.fields:
        spec = specs.get(name)
        rows[name] = FieldRow(
            key=name,
            field=form[name],
            help=spec.help if spec else "",
            required=spec.required if spec else False,
            errors=list(form.errors.get(name, [])),
            warnings=warnings.get(name, []),
            spec=spec,
        )
    for spec in specs.values():
        if spec.beside in rows:
            rows[spec.beside].beside.append(rows[spec.name])
    return rows


def _texts(form: QueryForm) -> dict[str, Any]:
    """The field texts as typed (posted) or as stored (not bound), send_at's too."""
    keys = [*text_fields(form.spec), "send_at"]
    if form.is_bound:
        return {key: form.data.get(key, "") for key in keys}
    return {key: form.initial.get(key, "") for key in keys}


def _for_each_text(form: QueryForm) -> str:
    text = form.data.get("for_each", "") if form.is_bound else form.initial.get("for_each", "")
    return text if isinstance(text, str) else ""


def _query_list(app: App) -> list[dict]:
    queries = Query.objects.filter(app=app).select_related("datasource").order_by("name")
    listed = []
    for query in queries:
        spec = query.datasource.plugin.actions.get(query.action)
        listed.append({"query": query, "action": spec.label if spec else query.action})
    return listed


def _editor_context(
    app: App,
    query: Query,
    form: QueryForm,
    *,
    result: Result | None = None,
    saved: bool | None = None,
) -> dict:
    known = known_names(app)
    offered = attributes(app)
    for_each = _for_each_text(form)
    # A merge's fields read the row too; for_each itself is read before there is one.
    in_fields = known | set(MERGE_NAMES) if for_each.strip() else known
    warnings = field_warnings(_texts(form), in_fields, attributes=offered)
    warnings.update(field_warnings({"for_each": for_each}, known, attributes=offered))
    rows = _rows(form, warnings)
    if result is not None:
        result.spec = form.spec
        _name_the_datasource(result, app, query)
    if result is not None and result.message and result.field in rows:
        # The response pane names the field; the field shows it too.
        rows[result.field].errors.append(result.message)
    return {
        "app": app,
        "section": "queries",
        "queries": _query_list(app),
        "query": query,
        "form": form,
        "rows": rows,
        "spec": form.spec,
        "plugin": query.datasource.plugin,
        # Choices shown beside another field are drawn in that field's label row.
        "action_fields": [
            rows[spec.name]
            for spec in shown_fields(form.spec)
            if not (spec.beside and spec.beside in rows)
        ],
        "all_rows": list(rows.values()),
        "warning_count": sum(len(w) for w in warnings.values()),
        "result": result,
        "saved": saved,
        "saved_at": timezone.localtime() if saved else None,
        "new_form": _new_form(app),
        "has_datasources": _datasources(app).exists(),
        "known": sorted(in_fields, key=str.lower),
        "suggestions": app_suggestions(app) + (sorted(MERGE_NAMES) if for_each.strip() else []),
        # A file input for each, to fill its files in the test values (editor-queries.js).
        "file_pickers": list(
            Widget.objects.filter(page__app=app, type="filepicker")
            .order_by("name")
            .values_list("name", flat=True)
            .distinct()
        ),
    }


def _new_form(app: App, data=None) -> NewQueryForm:
    # Its own ids: on the editor page it sits beside the query's form.
    if data is not None:
        return NewQueryForm(data, app=app, auto_id="new_%s")
    return NewQueryForm(app=app, initial={"name": _free_name(app)}, auto_id="new_%s")


def _free_name(app: App) -> str:
    taken = known_names(app)
    n = 1
    while f"query{n}" in taken:
        n += 1
    return f"query{n}"


# ---------------------------------------------------------------------- views


def _get_query(app: App, name: str) -> Query:
    return get_object_or_404(Query.objects.select_related("datasource"), app=app, name=name)


@login_required
@require_http_methods(["GET", "POST"])
def query_list(request: HttpRequest, app: str) -> HttpResponse:
    """The app's queries, and the form that creates one."""
    found = get_app_for_editor(request, app)
    status = 200
    if request.method == "POST":
        form = _new_form(found, request.POST)
        if form.is_valid():
            with transaction.atomic():
                query = Query.objects.create(
                    app=found,
                    name=form.cleaned_data["name"],
                    datasource=form.cleaned_data["datasource"],
                    action=form.cleaned_data["datasource"].plugin.first_action,
                    fields={},
                )
                audit.record(found.workspace, Action.CREATED, "query", query.name, request=request)
            messages.success(request, f"Created the query “{query.name}”.")
            return redirect("editor:query", found.slug, query.name)
        status = 422
    else:
        form = _new_form(found)
    context = {
        "app": found,
        "section": "queries",
        "queries": _query_list(found),
        "query": None,
        "new_form": form,
        "has_datasources": _datasources(found).exists(),
    }
    return render(request, TEMPLATE_LIST, context, status=status)


@login_required
@require_http_methods(["GET"])
def query_detail(request: HttpRequest, app: str, name: str) -> HttpResponse:
    found = get_app_for_editor(request, app)
    query = _get_query(found, name)
    form = QueryForm(
        app=found,
        query=query,
        initial={**_initial(query), "test_values": _test_values_text(request, found)},
    )
    return render(request, TEMPLATE_EDITOR, _editor_context(found, query, form))


def _bound_form(request: HttpRequest, app: App, query: Query) -> QueryForm:
    return QueryForm(request.POST, app=app, query=query)


def _save(request: HttpRequest, app: App, form: QueryForm) -> tuple[bool, bool]:
    """Validate and store; (saved, renamed). Nothing is written when a field is wrong."""
    _remember_test_values(request, app, request.POST.get("test_values", ""))
    if not form.is_valid():
        return False, False
    before = _stored(form.query)
    renamed = form.save()
    if _stored(form.query) != before:
        # The autosave saves as people type: only a real change is an audit entry.
        audit.record(app.workspace, Action.CHANGED, "query", form.query.name, request=request)
    return True, renamed


def _stored(query: Query) -> tuple:
    return (
        query.name,
        query.datasource_id,
        query.action,
        query.fields,
        query.send_at,
        query.for_each,
        query.run_on_page_load,
        query.confirm_before_run,
        query.confirm_message,
        query.timeout_seconds,
    )


def _renamed_response(request: HttpRequest, query: Query) -> HttpResponse:
    url = reverse("editor:query", args=[query.app.slug, query.name])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


@login_required
@require_POST
def query_save(request: HttpRequest, app: str, name: str) -> HttpResponse:
    """The autosave (htmx: the status and every field's messages) and the plain Save."""
    found = get_app_for_editor(request, app)
    query = _get_query(found, name)
    form = _bound_form(request, found, query)
    saved, renamed = _save(request, found, form)
    if renamed:
        if form.renamed:
            messages.success(request, f"Renamed the query to “{query.name}”.")
        return _renamed_response(request, query)
    status = 200 if saved else 422
    context = _editor_context(found, query, form, saved=saved)
    if request.htmx:
        return render(request, f"{TEMPLATE_EDITOR}#save-result", context, status=status)
    if saved:
        messages.success(request, f"Saved “{query.name}”.")
        return redirect("editor:query", found.slug, query.name)
    return render(request, TEMPLATE_EDITOR, context, status=status)


def _saved_first(
    request: HttpRequest, app: str, name: str
) -> tuple[App, Query, QueryForm, HttpResponse | None]:
    """Run and Preview save the posted form first; the response to send instead when the
    query was renamed (a redirect) or a field is wrong (nothing saved, nothing run)."""
    found = get_app_for_editor(request, app)
    query = _get_query(found, name)
    form = _bound_form(request, found, query)
    saved, renamed = _save(request, found, form)
    if renamed:
        return found, query, form, _renamed_response(request, query)
    if not saved:
        refused = _result_response(
            request, found, query, form, _not_saved(), saved=False, status=422
        )
        return found, query, form, refused
    return found, query, form, None


def _elapsed_ms(run: QueryRun, started: float) -> int:
    if run.finished_at is not None:
        return max(0, round((run.finished_at - run.created_at).total_seconds() * 1000))
    return round((time.monotonic() - started) * 1000)


def _not_saved() -> Result:
    return Result(
        kind="error",
        error="Nothing was saved or run: fix the fields marked in the form.",
        field="fields",
    )


def _result_response(
    request: HttpRequest,
    app: App,
    query: Query,
    form: QueryForm,
    result: Result,
    *,
    saved: bool,
    status: int,
) -> HttpResponse:
    context = _editor_context(app, query, form, result=result, saved=saved)
    template = f"{TEMPLATE_EDITOR}#run-result" if request.htmx else TEMPLATE_EDITOR
    return render(request, template, context, status=status)


@login_required
@require_POST
def query_run(request: HttpRequest, app: str, name: str) -> HttpResponse:
    """Save the posted form, then run the query for real with the test values and wait
    (up to RUN_WAIT_SECONDS) for the result."""
    found, query, form, refused = _saved_first(request, app, name)
    if refused is not None:
        return refused
    started = time.monotonic()
    try:
        inputs = parse_test_values(form.cleaned_data["test_values"])
        if query.for_each.strip() and request.POST.get("confirmed") != "1":
            # A merge asks first, with its count: Send posts the form again, confirmed.
            count = preview_merge(query, request.user, inputs, limit=0).count
            result = Result(kind="confirm", count=count)
            return _result_response(request, found, query, form, result, saved=True, status=200)
        run = create_run(query, request.user, inputs, request=request)
    except RunRequestError as exc:
        result = Result(kind="error", error=exc.message, field=exc.field)
        # A run limit is a 429 (shown the same way, under the button).
        status = 429 if isinstance(exc, RunLimitError) else 422
        return _result_response(request, found, query, form, result, saved=True, status=status)
    run = run.wait(RUN_WAIT_SECONDS, until_retrying=True)
    result = Result(
        kind="run",
        run=run,
        progress=run.progress() if run.is_merge else None,
        elapsed_ms=_elapsed_ms(run, started),
        data_json=_dump(run.data) if run.data is not None else "",
        error=run.error,
        field=run.error_field,
    )
    return _result_response(request, found, query, form, result, saved=True, status=200)


@login_required
@require_POST
def query_preview(request: HttpRequest, app: str, name: str) -> HttpResponse:
    """Save the posted form, then let the plugin say what a run with the test values
    would do, checked as a run would check it, and show it. Nothing is stored or sent."""
    found, query, form, refused = _saved_first(request, app, name)
    if refused is not None:
        return refused
    try:
        inputs = parse_test_values(form.cleaned_data["test_values"])
        if query.for_each.strip():
            merge = preview_merge(query, request.user, inputs, limit=MERGE_PREVIEW_ROWS)
            result = Result(kind="merge", merge=merge)
            return _result_response(request, found, query, form, result, saved=True, status=200)
        evaluated = evaluate_query_fields(query, binding_context(found, request.user, inputs))
        preview = query.datasource.plugin.preview_run(
            query.action, evaluated, SimpleNamespace(workspace=found.workspace)
        )
    except RunRequestError as exc:
        result = Result(kind="error", error=exc.message, field=exc.field)
    except PluginError as exc:
        # "No preview" is about the plugin, not about a field.
        where = "" if exc.code == "no_preview" else exc.field or "fields"
        result = Result(kind="error", error=exc.message, field=where)
    else:
        result = Result(kind="preview", preview=preview, data_json=_dump(preview))
        return _result_response(request, found, query, form, result, saved=True, status=200)
    return _result_response(request, found, query, form, result, saved=True, status=422)


@login_required
@require_POST
def query_delete(request: HttpRequest, app: str, name: str) -> HttpResponse:
    found = get_app_for_editor(request, app)
    query = _get_query(found, name)
    with transaction.atomic():
        query.delete()
        audit.record(found.workspace, Action.DELETED, "query", name, request=request)
    messages.success(request, f"Deleted the query “{name}”.")
    url = reverse("editor:queries", args=[found.slug])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


# ---------------------------------------------------------------------- the evaluated value

#: The evaluated value shown under a field is cut after this many characters.
SHOWN_VALUE = 2000


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return f"list of {len(value)}"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


@login_required
@require_POST
def evaluate_binding(request: HttpRequest, app: str) -> HttpResponse:
    """The value of one field's text (``binding_text``) with the test values posted
    (``binding_test_values``: the query editor's) or the widgets' defaults, on the page
    ``binding_page`` if given: shown under the field as it is typed. Nothing for text
    without a binding; the error, naming the field, when it fails."""
    found = get_app_for_editor(request, app)
    text = request.POST.get("binding_text", "")
    field_name = request.POST.get("binding_field", "")[:100] or "value"
    context: dict[str, Any] = {"shown": False, "error": "", "value": "", "kind": ""}
    if has_bindings(text):
        try:
            if "binding_test_values" in request.POST:
                inputs = parse_test_values(request.POST["binding_test_values"])
            else:
                inputs = default_test_values(found, request.user)
        except RunRequestError as exc:
            context["error"] = exc.message
        else:
            page = found.pages.filter(slug=request.POST.get("binding_page", "")).first()
            scope = binding_context(found, request.user, inputs, page=page)
            try:
                value = evaluate(field_name, text, scope)
            except BindingError as exc:
                context["error"] = str(exc)
            else:
                shown = value if isinstance(value, str) else _dump(value)
                if len(shown) > SHOWN_VALUE:
                    shown = shown[:SHOWN_VALUE] + "…"
                context.update(shown=True, value=shown, kind=_kind_of(value))
    return render(request, "editor/_value.html", context)
