"""The query editor: an app's queries, and one query's Send email fields with warnings
for bindings that read unknown names, test values, Run (a real run through the outbox)
and Preview (the email built and checked as a run would, but not sent).

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

from bindings import BindingError, check_names, evaluate, has_bindings
from builder.access import get_app_for_editor
from builder.models import App, Query, Widget
from builder.names import validate_identifier
from datasources.errors import PluginError
from datasources.models import Datasource
from datasources.plugins.smtp.message import LABELS
from queries.context import binding_context, check_inputs
from queries.errors import RunRequestError
from queries.execution import create_run, evaluate_query_fields
from queries.models import QueryRun, RunStatus
from widgets import get_type
from widgets.values import as_bool

TEMPLATE_LIST = "editor/queries/list.html"
TEMPLATE_EDITOR = "editor/queries/editor.html"

#: How long Run waits for the run to end before showing it as still going.
RUN_WAIT_SECONDS = 15.0
POLL_SECONDS = 0.1
#: Names every binding may read besides widgets and queries (queries/context.py).
CONTEXT_NAMES = ("user", "url", "app", "page")
DEFAULT_ACTION = "send_email"

#: The Send email fields that hold text with << >> bindings, as the seed orders them
#: (the toggle and the body type sit between them on the page).
TEXT_FIELDS = ("from", "reply_to", "to", "cc", "bcc", "subject", "body", "attachments")
REQUIRED = frozenset({"from", "to"})
HELP = {
    "from": "The address the email is sent from; Name <address> sets a display name.",
    "reply_to": "Where replies to this email go.",
    "to": "Recipients: separate several with commas, or bind a list.",
    "cc": "Copied recipients: separate several with commas, or bind a list.",
    "bcc": "Hidden recipients: in the envelope only, never in a header.",
    "subject": "",
    "body": "In an HTML body, bound values are escaped; add |safe for HTML you trust.",
    "attachments": "Files from a file picker (<< files1.files >>) or workspace files.",
}
PLACEHOLDERS = {
    "from": "Support <support@example.com>",
    "reply_to": "<< form1.data.email >>",
    "to": "<< form1.data.email >>",
    "cc": "team@example.com, << cc_input.value >>",
    "bcc": "archive@example.com",
    "subject": "Welcome, << form1.data.name >>!",
    "body": "Hello << form1.data.name >>,\n\nthanks for writing to us.",
    "attachments": "<< files1.files >>",
}
TEST_VALUES_LABEL = "Test values"


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
    """The editor's form: name and datasource, the Send email fields as raw text, the
    options. ``test_values`` rides along (Run and Preview read it) but is not stored."""

    name = forms.CharField(
        max_length=64,
        help_text="Bindings and events that use the old name are not renamed.",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "class": "qe-name"}
        ),
    )
    datasource = forms.ModelChoiceField(queryset=Datasource.objects.none(), empty_label=None)
    set_reply_to = forms.BooleanField(required=False, label=LABELS["set_reply_to"])
    body_type = forms.ChoiceField(
        required=False,
        choices=[("text", "Text"), ("html", "HTML")],
        widget=forms.RadioSelect,
        label="Body type",
    )
    run_on_page_load = forms.BooleanField(required=False, label="Run on page load")
    confirm_before_run = forms.BooleanField(
        required=False, label="Ask for confirmation before running"
    )
    timeout_seconds = forms.IntegerField(
        min_value=1,
        max_value=600,
        label="Timeout (seconds)",
        help_text="The run's whole budget, retries included (1–600).",
    )
    test_values = forms.CharField(required=False, strip=False, label=TEST_VALUES_LABEL)

    def __init__(self, *args, app: App, query: Query, **kwargs):
        kwargs.setdefault("initial", _initial(query))
        super().__init__(*args, **kwargs)
        self.app = app
        self.query = query
        self.fields["datasource"].queryset = _datasources(app)
        for key in TEXT_FIELDS:
            attrs = {
                "class": "qe-code",
                "spellcheck": "false",
                "autocomplete": "off",
                "placeholder": PLACEHOLDERS[key],
                "aria-describedby": f"msgs-{key}",
            }
            if key == "body":
                widget: forms.Widget = forms.Textarea(attrs={**attrs, "rows": 10})
            else:
                widget = forms.TextInput(attrs=attrs)
            self.fields[key] = forms.CharField(
                required=False, strip=False, label=LABELS[key], widget=widget
            )
        self.fields["test_values"].widget = forms.Textarea(
            attrs={"class": "qe-code", "rows": 12, "spellcheck": "false"}
        )

    def save(self) -> bool:
        """Store the cleaned form; True if the query was renamed. Fields the editor does
        not show (``from_name``) and non-text values left as they were are kept."""
        data = self.cleaned_data
        query = self.query
        fields = dict(query.fields)
        for key in TEXT_FIELDS:
            stored = fields.get(key)
            if stored is not None and not isinstance(stored, str) and data[key] == _as_text(stored):
                continue  # a list from the app's code, shown as JSON and left unchanged
            fields[key] = data[key]
        fields["set_reply_to"] = data["set_reply_to"]
        fields["body_type"] = data["body_type"] or _body_type(fields.get("body_type"))
        renamed = query.name != data["name"]
        query.name = data["name"]
        query.datasource = data["datasource"]
        query.fields = fields
        query.run_on_page_load = data["run_on_page_load"]
        query.confirm_before_run = data["confirm_before_run"]
        query.timeout_seconds = data["timeout_seconds"]
        with transaction.atomic():
            query.save()
        return renamed


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _body_type(value: Any) -> str:
    text = str(value or "").strip().lower()
    return "html" if text in ("html", "text/html") else "text"


def _initial(query: Query) -> dict:
    fields = query.fields
    initial = {key: _as_text(fields.get(key)) for key in TEXT_FIELDS}
    initial.update(
        name=query.name,
        datasource=query.datasource_id,
        set_reply_to=as_bool(fields.get("set_reply_to")),
        body_type=_body_type(fields.get("body_type")),
        run_on_page_load=query.run_on_page_load,
        confirm_before_run=query.confirm_before_run,
        timeout_seconds=query.timeout_seconds,
    )
    return initial


# ---------------------------------------------------------------------- names and test values


def known_names(app: App) -> set[str]:
    """What a binding in this app may read: every widget on every page, every query,
    and the context's own names."""
    widgets = Widget.objects.filter(page__app=app).values_list("name", flat=True)
    queries = Query.objects.filter(app=app).values_list("name", flat=True)
    return {*widgets, *queries, *CONTEXT_NAMES}


def field_warnings(texts: dict[str, Any], known: set[str]) -> dict[str, list[str]]:
    """Per field, its bindings that fail to parse or read a name that does not exist."""
    warnings = {}
    for key in TEXT_FIELDS:
        found = check_names(key, texts.get(key) or "", known)
        # Shown under the field itself: its name in front would only repeat the label.
        warnings[key] = [w.removeprefix(f"{key}: ") for w in found]
    return warnings


def default_test_values(app: App, user) -> dict[str, dict]:
    """A state for every widget of the app that has one, from its type and default
    value: what the page would send if nobody typed anything."""
    widgets = list(
        Widget.objects.filter(page__app=app).order_by("page__position", "page__id", "y", "x", "id")
    )
    children: dict[int, list[Widget]] = {}
    for widget in widgets:
        if widget.parent_id is not None:
            children.setdefault(widget.parent_id, []).append(widget)
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
        kind = widget.type
        if kind in ("input", "select"):
            value = default(widget, "default_value")
            return {"value": "" if value is None else value}
        if kind == "checkbox":
            return {"value": as_bool(default(widget, "default_value"))}
        if kind == "filepicker":
            return {"files": []}
        if kind == "table":
            return {"selected_row": None, "data": []}
        if kind in ("form", "container"):
            return {"data": data_of(widget)}
        return None

    def data_of(widget: Widget) -> dict:
        data: dict = {}
        for child in children.get(widget.pk, []):
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
    """The test values last typed in this app's editor, else the widgets' defaults."""
    if request.GET.get("defaults") != "1":
        stored = request.session.get(_session_key(app))
        if isinstance(stored, str):
            return stored
    return _dump(default_test_values(app, request.user))


def _remember_test_values(request: HttpRequest, app: App, text: str) -> None:
    request.session[_session_key(app)] = text


# ---------------------------------------------------------------------- page context


@dataclass
class FieldRow:
    """One field of the form with what is shown under it."""

    key: str
    field: BoundField
    help: str = ""
    required: bool = False
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.field.label


@dataclass
class Result:
    """What the response pane shows: a run, a preview, or why neither happened."""

    kind: str  # "run", "preview" or "error"
    run: QueryRun | None = None
    elapsed_ms: int | None = None
    data_json: str = ""
    preview: dict | None = None
    error: str = ""
    field: str = ""

    @property
    def field_label(self) -> str:
        return label_of(self.field)

    @property
    def message(self) -> str:
        # Shown under the field's label: a leading "to: " would only repeat it.
        return self.error.removeprefix(f"{self.field}: ") if self.field else self.error

    @property
    def retrying(self) -> bool:
        return self.run is not None and _retrying(self.run)


def label_of(key: str) -> str:
    if not key:
        return ""
    if key == "test_values" or key == "inputs" or key.startswith("inputs."):
        return TEST_VALUES_LABEL
    extra = {
        "name": "Name",
        "datasource": "Datasource",
        "timeout_seconds": "Timeout",
        "fields": "Fields",
        "action": "Action",
    }
    return LABELS.get(key) or extra.get(key) or key


def _rows(form: QueryForm, warnings: dict[str, list[str]]) -> dict[str, FieldRow]:
    rows = {}
    for name in form.fields:
        rows[name] = FieldRow(
            key=name,
            field=form[name],
            help=HELP.get(name, ""),
            required=name in REQUIRED,
            errors=list(form.errors.get(name, [])),
            warnings=warnings.get(name, []),
        )
    return rows


def _texts(form: QueryForm) -> dict[str, Any]:
    """The field texts as typed (posted) or as stored (not bound)."""
    if form.is_bound:
        return {key: form.data.get(key, "") for key in TEXT_FIELDS}
    return {key: form.initial.get(key, "") for key in TEXT_FIELDS}


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
    warnings = field_warnings(_texts(form), known)
    rows = _rows(form, warnings)
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
        "send_fields": [rows[key] for key in TEXT_FIELDS],
        "all_rows": list(rows.values()),
        "warning_count": sum(len(w) for w in warnings.values()),
        "result": result,
        "saved": saved,
        "saved_at": timezone.localtime() if saved else None,
        "new_form": _new_form(app),
        "has_datasources": _datasources(app).exists(),
        "known": sorted(known, key=str.lower),
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
                    action=DEFAULT_ACTION,
                    fields={},
                )
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
    return True, form.save()


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


def _retrying(run: QueryRun) -> bool:
    """Failed at least once and queued again: waiting for its next attempt."""
    return run.status == RunStatus.QUEUED and run.attempts > 0


def wait_for(run: QueryRun, seconds: float = RUN_WAIT_SECONDS) -> QueryRun:
    """The run once it has ended, failed and waits to retry, or ``seconds`` passed."""
    deadline = time.monotonic() + seconds
    run.refresh_from_db()
    while not (run.finished or _retrying(run)) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        run.refresh_from_db()
    return run


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
    found = get_app_for_editor(request, app)
    query = _get_query(found, name)
    form = _bound_form(request, found, query)
    saved, renamed = _save(request, found, form)
    if renamed:
        return _renamed_response(request, query)
    if not saved:
        return _result_response(request, found, query, form, _not_saved(), saved=False, status=422)
    started = time.monotonic()
    try:
        inputs = parse_test_values(form.cleaned_data["test_values"])
        run = create_run(query, request.user, inputs)
    except RunRequestError as exc:
        result = Result(kind="error", error=exc.message, field=exc.field)
        return _result_response(request, found, query, form, result, saved=True, status=422)
    run = wait_for(run)
    result = Result(
        kind="run",
        run=run,
        elapsed_ms=_elapsed_ms(run, started),
        data_json=_dump(run.data) if run.data is not None else "",
        error=run.error,
        field=run.error_field,
    )
    return _result_response(request, found, query, form, result, saved=True, status=200)


@login_required
@require_POST
def query_preview(request: HttpRequest, app: str, name: str) -> HttpResponse:
    """Save the posted form, then build the email with the test values, checked as a
    run would check it, and show it. Nothing is stored or sent."""
    found = get_app_for_editor(request, app)
    query = _get_query(found, name)
    form = _bound_form(request, found, query)
    saved, renamed = _save(request, found, form)
    if renamed:
        return _renamed_response(request, query)
    if not saved:
        return _result_response(request, found, query, form, _not_saved(), saved=False, status=422)
    try:
        inputs = parse_test_values(form.cleaned_data["test_values"])
        evaluated = evaluate_query_fields(query, binding_context(found, request.user, inputs))
        preview = query.datasource.plugin.preview(
            query.action, evaluated, SimpleNamespace(workspace=found.workspace)
        )
    except RunRequestError as exc:
        result = Result(kind="error", error=exc.message, field=exc.field)
    except PluginError as exc:
        result = Result(kind="error", error=exc.message, field=exc.field or "fields")
    except NotImplementedError:
        label = query.datasource.plugin.label
        result = Result(kind="error", error=f"{label} queries have no preview.", field="")
    else:
        result = Result(kind="preview", preview=preview)
        return _result_response(request, found, query, form, result, saved=True, status=200)
    return _result_response(request, found, query, form, result, saved=True, status=422)


@login_required
@require_POST
def query_delete(request: HttpRequest, app: str, name: str) -> HttpResponse:
    found = get_app_for_editor(request, app)
    query = _get_query(found, name)
    with transaction.atomic():
        query.delete()
    messages.success(request, f"Deleted the query “{name}”.")
    url = reverse("editor:queries", args=[found.slug])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)
