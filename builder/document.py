"""Apps as code: an app, its pages, widgets and queries as one JSON document.

``export_app`` writes the document; ``import_app`` reads one into a workspace. The format
is described in docs/app-format.md and typed by the models of builder.schema
(``AppDocument`` and the rest), which this module re-exports. Secrets never enter a file:
a datasource's password is named by an environment variable (``"password": {"env":
"SMTP_PASSWORD"}``) and read from the environment at import time.

An import checks the document's shape with the models, then reads it against the
workspace into a plan before it stores anything, so that an error leaves the workspace as
it was; the plan is stored inside one transaction.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.db import transaction
from django.utils.text import slugify
from pydantic import ValidationError as SchemaError

from builder.actions import walk
from builder.models import App, Page, Query
from builder.schema import (
    INT_MAX,
    KIND,
    SMALL_INT_MAX,
    VERSION,
    AppDocument,
    DatasourceDocument,
    PageDocument,
    QueryDocument,
    WidgetDocument,
    error_message,
    error_path,
)
from core.errors import KilnError
from datasources.forms import config_form_for
from datasources.models import Datasource
from datasources.plugins import get_plugin, plugin_kinds
from workspaces.models import Workspace

__all__ = [
    "INT_MAX",
    "KIND",
    "SMALL_INT_MAX",
    "VERSION",
    "AppDocument",
    "AppFileError",
    "DatasourceDocument",
    "PageDocument",
    "QueryDocument",
    "WidgetDocument",
    "export_app",
    "import_app",
    "parse_document",
]


class AppFileError(KilnError, ValueError):
    """What is wrong with an app file, and where: ``pages[0].widgets[2].name`` (its
    ``field`` is that path)."""

    def __init__(self, path: str, message: str):
        super().__init__(path, message)
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def parse_document(document: Any) -> AppDocument:
    """``document`` (parsed JSON) as an ``AppDocument``; ``AppFileError`` naming the first
    problem of its shape."""
    try:
        return AppDocument.model_validate(document)
    except SchemaError as exc:
        error = exc.errors()[0]
        key = (error.get("ctx") or {}).get("key")
        raise AppFileError(error_path(error["loc"], key), error_message(error)) from None


# Export


def export_app(app: App) -> dict:
    """The app as a JSON-able document, with the datasources its queries use (no secrets)."""
    return app.to_document().model_dump(mode="json")


# Import


def import_app(
    document: dict, workspace: Workspace, *, environ: Mapping[str, str] = os.environ
) -> App:
    """Creates the app described by ``document`` in ``workspace``; stores nothing on error.

    Raises ``AppFileError`` naming the first problem found.
    """
    with transaction.atomic():
        plan = _Reader(workspace, environ).read(parse_document(document))
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
    document: WidgetDocument

    @property
    def name(self) -> str:
        return self.document.name

    @property
    def parent(self) -> str | None:
        return self.document.parent

    @property
    def events(self) -> dict:
        return self.document.events


@dataclass
class _PagePlan:
    name: str
    slug: str
    position: int
    widgets: list[_WidgetPlan]


@dataclass
class _Plan:
    name: str
    slug: str
    datasources: dict[str, _DatasourcePlan]
    pages: list[_PagePlan]
    queries: list[QueryDocument]


class _Reader:
    """Checks a typed document against the workspace and the rest of the file, and turns
    it into a plan; touches the database only to read."""

    def __init__(self, workspace: Workspace, environ: Mapping[str, str]):
        self.workspace = workspace
        self.environ = environ

    def read(self, doc: AppDocument) -> _Plan:
        datasources: dict[str, _DatasourcePlan] = {}
        for i, entry in enumerate(doc.datasources):
            path = f"datasources[{i}]"
            plan = self.datasource(entry, path)
            if plan.name in datasources:
                raise AppFileError(f"{path}.name", f"duplicate datasource name “{plan.name}”")
            datasources[plan.name] = plan

        pages = [self.page(entry, f"pages[{i}]", i) for i, entry in enumerate(doc.pages)]
        _unique([page.slug for page in pages], "pages", "page", key="slug", skip_blank=True)
        _fill_page_slugs(pages)

        for i, entry in enumerate(doc.queries):
            self.query(entry, f"queries[{i}]", datasources)
        _unique([query.name for query in doc.queries], "queries", "query")
        query_names = {query.name for query in doc.queries}
        for i, page in enumerate(pages):
            _check_run_query_events(page, f"pages[{i}]", query_names)
        return _Plan(doc.app.name, doc.app.slug, datasources, pages, list(doc.queries))

    # Datasources

    def datasource(self, entry: DatasourceDocument, path: str) -> _DatasourcePlan:
        name, kind = entry.name, entry.kind
        if kind not in plugin_kinds():
            known = ", ".join(sorted(plugin_kinds()))
            raise AppFileError(f"{path}.kind", f"unknown datasource kind “{kind}” (known: {known})")
        form_class = get_plugin(kind).config_form
        secrets = list(get_plugin(kind).secret_fields)
        extra = entry.model_extra or {}
        for key in extra:
            if key not in secrets:
                known = ", ".join(("name", "kind", "config", *secrets))
                raise AppFileError(f"{path}.{key}", f"unknown key (expected: {known})")
        # Checked before a reuse too: a secret written in the file is a leak either way.
        sources = {
            key: _secret_source(extra[key], f"{path}.{key}") for key in secrets if key in extra
        }

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
        data = _form_defaults(form_class, skip=secrets)
        for key, value in entry.config.items():
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

    def page(self, entry: PageDocument, path: str, index: int) -> _PagePlan:
        widgets = [_WidgetPlan(j, widget) for j, widget in enumerate(entry.widgets)]
        _unique([widget.name for widget in widgets], f"{path}.widgets", "widget", scope="page")
        return _PagePlan(
            name=entry.name,
            slug=entry.slug,
            position=index if entry.position is None else entry.position,
            widgets=_parents_first(widgets, f"{path}.widgets"),
        )

    # Queries

    def query(
        self, entry: QueryDocument, path: str, datasources: dict[str, _DatasourcePlan]
    ) -> None:
        source = entry.datasource
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
        action = entry.action
        if action not in actions:
            known = ", ".join(actions)
            raise AppFileError(
                f"{path}.action", f"{kind} has no action “{action}” (known: {known})"
            )
        for key in entry.fields:
            if key not in actions[action].fields:
                raise AppFileError(f"{path}.fields.{key}", f"{action} has no field “{key}”")


def free_app_name(workspace: Workspace, name: str) -> str:
    """``name``, or "<name> (2)", "(3)"... when the workspace already has an app by that
    name: two apps of one name cannot be told apart in the list."""
    limit = App._meta.get_field("name").max_length
    taken = set(
        App.objects.filter(workspace=workspace, name__startswith=name[: limit - 8]).values_list(
            "name", flat=True
        )
    )
    if name not in taken:
        return name
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = name[: limit - len(suffix)].rstrip() + suffix
        if candidate not in taken:
            return candidate
        number += 1


def _store(plan: _Plan, workspace: Workspace) -> App:
    slug = plan.slug if plan.slug and not App.objects.filter(slug=plan.slug).exists() else ""
    app = App(workspace=workspace, name=free_app_name(workspace, plan.name), slug=slug)
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
        page.replace_widgets([widget.document for widget in page_plan.widgets])
    for document in plan.queries:
        Query.from_document(document, app=app, datasource=datasources[document.datasource]).save()
    return app


# Checks shared by the reader


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
    if "env" not in value:
        raise AppFileError(f"{path}.env", "is required")
    for name in value:
        if name != "env":
            raise AppFileError(f"{path}.{name}", "unknown key (expected: env)")
    variable = value["env"]
    if not isinstance(variable, str) or not variable.strip():
        raise AppFileError(f"{path}.env", "must be a non-empty string")
    if len(variable) > 255:
        raise AppFileError(f"{path}.env", "must be at most 255 characters")
    return variable


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
