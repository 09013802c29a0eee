"""Apps as code: an app, its pages, widgets and queries as one JSON document.

``export_app`` writes the document; ``import_app`` reads one into a workspace. The format
is described in docs/app-format.md. Secrets never enter a file: a datasource's password is
named by an environment variable (``"password": {"env": "SMTP_PASSWORD"}``) and read from
the environment at import time.

An import reads and checks the whole document into a plan before it stores anything, so
that an error leaves the workspace as it was; the plan is stored inside one transaction.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils.text import slugify

from builder.actions import walk
from builder.models import App, Page, Query, Widget
from builder.names import validate_identifier
from datasources.forms import config_form_for
from datasources.models import Datasource
from datasources.plugins import PLUGINS, get_plugin
from workspaces.models import Workspace

KIND = "app"
VERSION = 1

# Column limits of the models, checked here so that a bad file gives a path, not a
# database error.
SMALL_INT_MAX = 32767
INT_MAX = 2147483647


class AppFileError(ValueError):
    """What is wrong with an app file, and where: ``pages[0].widgets[2].name``."""

    def __init__(self, path: str, message: str):
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def secret_fields(form_class: type[forms.Form]) -> list[str]:
    """The settings a plugin's form takes as secrets: they never enter an app file."""
    return [
        name
        for name, form_field in form_class.base_fields.items()
        if isinstance(form_field.widget, forms.PasswordInput)
    ]


# Export


def export_app(app: App) -> dict:
    """The app as a JSON-able document, with the datasources its queries use (no secrets)."""
    queries = list(app.queries.select_related("datasource").order_by("name", "id"))
    used = {query.datasource_id: query.datasource for query in queries}
    datasources = sorted(used.values(), key=lambda datasource: datasource.name)
    return {
        "kiln": KIND,
        "version": VERSION,
        "app": {"name": app.name, "slug": app.slug},
        "datasources": [_export_datasource(datasource) for datasource in datasources],
        "pages": [_export_page(page) for page in app.pages.order_by("position", "id")],
        "queries": [_export_query(query) for query in queries],
    }


def _export_datasource(datasource: Datasource) -> dict:
    try:
        hidden = set(secret_fields(get_plugin(datasource.kind).config_form))
    except LookupError:
        hidden = set()
    # The config holds no secret by design; leaving the secret fields out anyway means a
    # plugin that got this wrong still cannot leak one into a file.
    hidden.add("secret")
    config = {key: value for key, value in datasource.config.items() if key not in hidden}
    return {"name": datasource.name, "kind": datasource.kind, "config": config}


def _export_page(page: Page) -> dict:
    return {
        "name": page.name,
        "slug": page.slug,
        "position": page.position,
        "widgets": [_export_widget(widget, names) for widget, names in _widgets_in_order(page)],
    }


def _widgets_in_order(page: Page) -> list[tuple[Widget, dict[int, str]]]:
    """The page's widgets in layout order, each parent before its children."""
    ordered = page.widgets_in_order()
    names = {widget.pk: widget.name for widget in ordered}
    return [(widget, names) for widget in ordered]


def _export_widget(widget: Widget, names: dict[int, str]) -> dict:
    return {
        "name": widget.name,
        "type": widget.type,
        "parent": names.get(widget.parent_id),
        "properties": widget.properties,
        "events": widget.events,
        "x": widget.x,
        "y": widget.y,
        "w": widget.w,
        "h": widget.h,
    }


def _export_query(query: Query) -> dict:
    return {
        "name": query.name,
        "datasource": query.datasource.name,
        "action": query.action,
        "fields": query.fields,
        "run_on_page_load": query.run_on_page_load,
        "confirm_before_run": query.confirm_before_run,
        "timeout_seconds": query.timeout_seconds,
    }


# Import


def import_app(
    document: dict, workspace: Workspace, *, environ: Mapping[str, str] = os.environ
) -> App:
    """Creates the app described by ``document`` in ``workspace``; stores nothing on error.

    Raises ``AppFileError`` naming the first problem found.
    """
    with transaction.atomic():
        plan = _Reader(workspace, environ).read(document)
        return _store(plan, workspace)


@dataclass
class _DatasourcePlan:
    name: str
    kind: str
    existing: Datasource | None = None
    config: dict = field(default_factory=dict)
    secret: str = ""


@dataclass
class _WidgetPlan:
    index: int  # in the file, for error paths after reordering
    name: str
    type: str
    parent: str | None
    properties: dict
    events: dict
    x: int
    y: int
    w: int
    h: int


@dataclass
class _PagePlan:
    name: str
    slug: str
    position: int
    widgets: list[_WidgetPlan]


@dataclass
class _QueryPlan:
    name: str
    datasource: str
    action: str
    fields: dict
    run_on_page_load: bool
    confirm_before_run: bool
    timeout_seconds: int


@dataclass
class _Plan:
    name: str
    slug: str
    datasources: dict[str, _DatasourcePlan]
    pages: list[_PagePlan]
    queries: list[_QueryPlan]


class _Reader:
    """Checks a document and turns it into a plan; touches the database only to read."""

    def __init__(self, workspace: Workspace, environ: Mapping[str, str]):
        self.workspace = workspace
        self.environ = environ

    def read(self, document: Any) -> _Plan:
        doc = _object(document, "document")
        _keys(doc, "", required=("kiln", "version", "app"), optional=_LISTS)
        if doc["kiln"] != KIND:
            raise AppFileError("kiln", f'must be "{KIND}" (this is not a Kiln app file)')
        version = doc["version"]
        if type(version) is not int or version != VERSION:
            raise AppFileError("version", f"unsupported version {version!r}; expected {VERSION}")
        app = _object(doc["app"], "app")
        _keys(app, "app", required=("name",), optional=("slug",))
        name = _text(app["name"], "app.name", max_length=100)
        slug = _slug(app.get("slug"), "app.slug")

        datasources: dict[str, _DatasourcePlan] = {}
        for i, entry in enumerate(_list(doc.get("datasources", []), "datasources")):
            path = f"datasources[{i}]"
            plan = self.datasource(entry, path)
            if plan.name in datasources:
                raise AppFileError(f"{path}.name", f"duplicate datasource name “{plan.name}”")
            datasources[plan.name] = plan

        pages = [
            self.page(entry, f"pages[{i}]", i)
            for i, entry in enumerate(_list(doc.get("pages", []), "pages"))
        ]
        _unique([page.slug for page in pages], "pages", "page", key="slug", skip_blank=True)
        _fill_page_slugs(pages)

        queries = [
            self.query(entry, f"queries[{i}]", datasources)
            for i, entry in enumerate(_list(doc.get("queries", []), "queries"))
        ]
        _unique([query.name for query in queries], "queries", "query")
        query_names = {query.name for query in queries}
        for i, page in enumerate(pages):
            _check_run_query_events(page, f"pages[{i}]", query_names)
        return _Plan(name, slug, datasources, pages, queries)

    # Datasources

    def datasource(self, entry: Any, path: str) -> _DatasourcePlan:
        obj = _object(entry, path)
        for key in ("name", "kind"):
            if key not in obj:
                raise AppFileError(f"{path}.{key}", "is required")
        name = _text(obj["name"], f"{path}.name", max_length=100)
        kind = _text(obj["kind"], f"{path}.kind", max_length=30)
        if kind not in PLUGINS:
            known = ", ".join(sorted(PLUGINS))
            raise AppFileError(f"{path}.kind", f"unknown datasource kind “{kind}” (known: {known})")
        form_class = get_plugin(kind).config_form
        secrets = secret_fields(form_class)
        _keys(obj, path, required=("name", "kind"), optional=("config", *secrets))
        # Checked before a reuse too: a secret written in the file is a leak either way.
        sources = {key: _secret_source(obj[key], f"{path}.{key}") for key in secrets if key in obj}

        existing = self.workspace.datasources.filter(name=name).first()
        if existing is not None:
            if existing.kind != kind:
                raise AppFileError(
                    f"{path}.kind",
                    f"the workspace already has a datasource “{name}” of kind "
                    f"“{existing.kind}”, not “{kind}”",
                )
            return _DatasourcePlan(name, kind, existing=existing)

        config_path = f"{path}.config"
        config = _object(obj.get("config", {}), config_path)
        data = _form_defaults(form_class, skip=secrets)
        for key, value in config.items():
            key_path = f"{config_path}.{key}"
            if key in secrets:
                raise AppFileError(key_path, _literal_secret(key))
            form_field = form_class.base_fields.get(key)
            if form_field is None:
                known = ", ".join(name for name in form_class.base_fields if name not in secrets)
                raise AppFileError(key_path, f"unknown setting (known: {known})")
            if isinstance(form_field, forms.BooleanField):
                if not isinstance(value, bool):
                    raise AppFileError(key_path, "must be true or false")
            elif value is not None and not isinstance(value, str | int | float):
                raise AppFileError(key_path, "must be a string or a number")
            data[key] = value
        for key, variable in sources.items():
            data[key] = self.environment(variable, f"{path}.{key}")

        form = config_form_for(kind, data)
        if not form.is_valid():
            for key, errors in form.errors.items():
                message = " ".join(errors)
                if key in secrets:
                    if key not in sources:
                        message += f' Add "{key}": {{"env": "VARIABLE"}} to the datasource.'
                    raise AppFileError(f"{path}.{key}", message)
                where = config_path if key == NON_FIELD_ERRORS else f"{config_path}.{key}"
                raise AppFileError(where, message)
        stored_config, secret = form.stored()
        return _DatasourcePlan(name, kind, config=stored_config, secret=secret)

    def environment(self, variable: str, path: str) -> str:
        value = self.environ.get(variable)
        if value is None:
            raise AppFileError(path, f"the environment variable {variable} is not set")
        if not value:
            raise AppFileError(path, f"the environment variable {variable} is empty")
        return value

    # Pages and widgets

    def page(self, entry: Any, path: str, index: int) -> _PagePlan:
        obj = _object(entry, path)
        _keys(obj, path, required=("name",), optional=("slug", "position", "widgets"))
        widgets = [
            self.widget(item, f"{path}.widgets[{j}]", j)
            for j, item in enumerate(_list(obj.get("widgets", []), f"{path}.widgets"))
        ]
        _unique([widget.name for widget in widgets], f"{path}.widgets", "widget", scope="page")
        return _PagePlan(
            name=_text(obj["name"], f"{path}.name", max_length=100),
            slug=_slug(obj.get("slug"), f"{path}.slug"),
            position=_int(obj.get("position", index), f"{path}.position", maximum=INT_MAX),
            widgets=_parents_first(widgets, f"{path}.widgets"),
        )

    def widget(self, entry: Any, path: str, index: int) -> _WidgetPlan:
        obj = _object(entry, path)
        _keys(
            obj,
            path,
            required=("name", "type"),
            optional=("parent", "properties", "events", "x", "y", "w", "h"),
        )
        parent = obj.get("parent")
        if parent is not None and not isinstance(parent, str):
            raise AppFileError(f"{path}.parent", "must be a widget's name or null")
        return _WidgetPlan(
            index=index,
            name=_identifier(obj["name"], f"{path}.name"),
            type=_text(obj["type"], f"{path}.type", max_length=32),
            parent=parent,
            properties=_object(obj.get("properties", {}), f"{path}.properties"),
            events=_object(obj.get("events", {}), f"{path}.events"),
            x=_int(obj.get("x", 0), f"{path}.x", maximum=SMALL_INT_MAX),
            y=_int(obj.get("y", 0), f"{path}.y", maximum=INT_MAX),
            w=_int(obj.get("w", 4), f"{path}.w", maximum=SMALL_INT_MAX),
            h=_int(obj.get("h", 1), f"{path}.h", maximum=SMALL_INT_MAX),
        )

    # Queries

    def query(self, entry: Any, path: str, datasources: dict[str, _DatasourcePlan]) -> _QueryPlan:
        obj = _object(entry, path)
        _keys(
            obj,
            path,
            required=("name", "datasource", "action"),
            optional=("fields", "run_on_page_load", "confirm_before_run", "timeout_seconds"),
        )
        name = _identifier(obj["name"], f"{path}.name")
        source = _text(obj["datasource"], f"{path}.datasource", max_length=100)
        if source in datasources:
            kind = datasources[source].kind
        else:
            existing = self.workspace.datasources.filter(name=source).first()
            if existing is None:
                raise AppFileError(
                    f"{path}.datasource",
                    f"no datasource named “{source}” in the file or in the workspace",
                )
            # Used as it is; recorded so that the store step finds it by name.
            datasources[source] = _DatasourcePlan(source, existing.kind, existing=existing)
            kind = existing.kind
        try:
            actions = get_plugin(kind).actions
        except LookupError:
            raise AppFileError(
                f"{path}.datasource", f"datasource “{source}” has an unknown kind “{kind}”"
            ) from None
        action = _text(obj["action"], f"{path}.action", max_length=50)
        if action not in actions:
            known = ", ".join(actions)
            raise AppFileError(
                f"{path}.action", f"{kind} has no action “{action}” (known: {known})"
            )
        fields = _object(obj.get("fields", {}), f"{path}.fields")
        for key in fields:
            if key not in actions[action].fields:
                raise AppFileError(f"{path}.fields.{key}", f"{action} has no field “{key}”")
        return _QueryPlan(
            name=name,
            datasource=source,
            action=action,
            fields=fields,
            run_on_page_load=_bool(obj.get("run_on_page_load", False), f"{path}.run_on_page_load"),
            confirm_before_run=_bool(
                obj.get("confirm_before_run", False), f"{path}.confirm_before_run"
            ),
            timeout_seconds=_int(
                obj.get("timeout_seconds", 60), f"{path}.timeout_seconds", 1, INT_MAX
            ),
        )


def _store(plan: _Plan, workspace: Workspace) -> App:
    slug = plan.slug if plan.slug and not App.objects.filter(slug=plan.slug).exists() else ""
    app = App(workspace=workspace, name=plan.name, slug=slug)
    app.save()  # A blank slug becomes a free one.
    datasources = {}
    for name, source in plan.datasources.items():
        datasources[name] = source.existing or Datasource.objects.create(
            workspace=workspace,
            name=name,
            kind=source.kind,
            config=source.config,
            secret=source.secret,
        )
    for page_plan in plan.pages:
        page = Page.objects.create(
            app=app, name=page_plan.name, slug=page_plan.slug, position=page_plan.position
        )
        created: dict[str, Widget] = {}
        for w in page_plan.widgets:
            created[w.name] = Widget.objects.create(
                page=page,
                parent=created[w.parent] if w.parent else None,
                name=w.name,
                type=w.type,
                properties=w.properties,
                events=w.events,
                x=w.x,
                y=w.y,
                w=w.w,
                h=w.h,
            )
    for q in plan.queries:
        Query.objects.create(
            app=app,
            name=q.name,
            datasource=datasources[q.datasource],
            action=q.action,
            fields=q.fields,
            run_on_page_load=q.run_on_page_load,
            confirm_before_run=q.confirm_before_run,
            timeout_seconds=q.timeout_seconds,
        )
    return app


# Checks shared by the reader

_LISTS = ("datasources", "pages", "queries")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise AppFileError(path, "must be an object")
    return value


def _list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise AppFileError(path, "must be a list")
    return value


def _keys(obj: dict, path: str, *, required: tuple, optional: tuple) -> None:
    for key in required:
        if key not in obj:
            raise AppFileError(_join(path, key), "is required")
    for key in obj:
        if key not in required and key not in optional:
            known = ", ".join((*required, *optional))
            raise AppFileError(_join(path, str(key)), f"unknown key (expected: {known})")


def _text(value: Any, path: str, *, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AppFileError(path, "must be a non-empty string")
    if len(value) > max_length:
        raise AppFileError(path, f"must be at most {max_length} characters")
    return value


def _slug(value: Any, path: str) -> str:
    """A slug, or "" when none is given (one is then made from the name)."""
    if value is None or value == "":
        return ""
    _text(value, path, max_length=100)
    try:
        validate_slug(value)
    except ValidationError:
        raise AppFileError(path, "must contain only letters, digits, - and _") from None
    return value


def _identifier(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise AppFileError(path, "must be a string")
    try:
        validate_identifier(value)
    except ValidationError as exc:
        raise AppFileError(path, exc.messages[0]) from None
    return value


def _int(value: Any, path: str, minimum: int = 0, maximum: int = INT_MAX) -> int:
    # bool is an int in Python, but `true` for a width is a mistake.
    if type(value) is not int or not minimum <= value <= maximum:
        raise AppFileError(path, f"must be a whole number from {minimum} to {maximum}")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise AppFileError(path, "must be true or false")
    return value


def _literal_secret(key: str) -> str:
    return (
        f"a literal {key} is not allowed in an app file: put it in an environment variable "
        f'and write "{key}": {{"env": "VARIABLE"}} in the datasource entry'
    )


def _secret_source(value: Any, path: str) -> str:
    """The name of the environment variable that holds a secret."""
    key = path.rsplit(".", 1)[-1]
    if not isinstance(value, dict):
        raise AppFileError(path, _literal_secret(key))
    _keys(value, path, required=("env",), optional=())
    return _text(value["env"], f"{path}.env", max_length=255)


def _form_defaults(form_class: type[forms.Form], *, skip: list[str]) -> dict:
    """The form's initial values, so that a setting left out of the file gets the same
    default as in the UI (a missing checkbox would otherwise read as false)."""
    defaults = {}
    for name, form_field in form_class.base_fields.items():
        initial = form_field.initial() if callable(form_field.initial) else form_field.initial
        if name not in skip and initial is not None:
            defaults[name] = initial
    return defaults


def _unique(
    values: list[str],
    path: str,
    noun: str,
    *,
    key: str = "name",
    scope: str = "app",
    skip_blank: bool = False,
) -> None:
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        if skip_blank and not value:
            continue
        if value in seen:
            raise AppFileError(
                f"{path}[{i}].{key}",
                f"duplicate {noun} {key} “{value}” in this {scope}"
                f" (first at {path}[{seen[value]}])",
            )
        seen[value] = i


def _parents_first(widgets: list[_WidgetPlan], path: str) -> list[_WidgetPlan]:
    """The widgets reordered so that each parent comes before its children."""
    by_name = {widget.name: widget for widget in widgets}
    for i, widget in enumerate(widgets):
        if widget.parent is None:
            continue
        if widget.parent not in by_name:
            raise AppFileError(
                f"{path}[{i}].parent", f"no widget named “{widget.parent}” on this page"
            )
        # Walk up the chain: reaching this widget again means a cycle.
        seen, current = {widget.name}, widget.parent
        while current is not None:
            if current in seen:
                raise AppFileError(f"{path}[{i}].parent", "widgets' parents form a cycle")
            seen.add(current)
            current = by_name[current].parent
    ordered: list[_WidgetPlan] = []
    placed: set[str] = set()

    def place(widget: _WidgetPlan) -> None:
        if widget.name in placed:
            return
        if widget.parent is not None:
            place(by_name[widget.parent])
        placed.add(widget.name)
        ordered.append(widget)

    for widget in widgets:
        place(widget)
    return ordered


def _fill_page_slugs(pages: list[_PagePlan]) -> None:
    """Gives each page without a slug one made from its name, free among the file's."""
    taken = {page.slug for page in pages if page.slug}
    for page in pages:
        if page.slug:
            continue
        base = slugify(page.name)[:90] or "page"
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        page.slug = slug
        taken.add(slug)


def _check_run_query_events(page: _PagePlan, path: str, queries: set[str]) -> None:
    """Every query an action names, in any chain, must be a query of the file (a renamed
    query is caught here, not when a user clicks the button)."""
    for widget in page.widgets:
        for event, handlers in widget.events.items():
            for kind, action, where in walk(handlers, event):
                for key, ref, _name in kind.references(action):
                    if ref == "query" and action.get(key) not in queries:
                        raise AppFileError(
                            f"{path}.widgets[{widget.index}].events.{where}.{key}",
                            f"no query named “{action.get(key)}” in the file",
                        )
