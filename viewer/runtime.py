"""The published app at run time: widget state from a request, bound properties,
rendering, and the action chains that widget events run.

A page is rendered from its published document (builder.publishing): widgets are read
from there, never from the editable rows, so that editing changes nothing for viewers
until the next publish.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.http import Http404, HttpRequest, QueryDict
from django.urls import reverse
from django.utils.datastructures import MultiValueDict
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from bindings import BindingError, evaluate, referenced_names
from builder.access import get_app_for_editor, get_app_for_member
from builder.document import export_app
from builder.models import App, AppVersion, Query
from builder.publishing import published
from builder.schema import QueryDocument
from queries.context import binding_context
from queries.errors import RunRequestError
from queries.execution import create_run
from queries.models import QueryRun
from widgets import RenderAttrs, WidgetSpec, get_type
from workspaces.models import Role

POLL_DELAY = "600ms"


def load_draft(request: HttpRequest, slug: str) -> tuple[App, AppVersion]:
    """The app as it is being edited (not saved as a version), for its editors."""
    app = get_app_for_editor(request, slug)
    return app, AppVersion(app=app, number=0, document=export_app(app))


def load_app(request: HttpRequest, slug: str) -> tuple[App, AppVersion]:
    """The app and its published version, for a member of its workspace (any role)."""
    app = get_app_for_member(request, slug)
    version = published(app)
    if version is None:
        raise Http404("This app has not been published yet")
    return app, version


@dataclass
class Output:
    """What a response sends back: cells to swap, field errors, toasts, pollers."""

    main: str = ""
    fragments: list[str] = field(default_factory=list)
    toasts: list[str] = field(default_factory=list)
    pollers: list[str] = field(default_factory=list)
    redirect: str | None = None
    triggers: dict[str, Any] = field(default_factory=dict)

    def html(self) -> str:
        parts = [self.main, *self.fragments]
        if self.toasts:
            parts.append(f'<div hx-swap-oob="beforeend:#kiln-toasts">{"".join(self.toasts)}</div>')
        if self.pollers:
            parts.append(
                f'<div hx-swap-oob="beforeend:#kiln-pollers">{"".join(self.pollers)}</div>'
            )
        return "".join(parts)


def toast(kind: str, message: str) -> str:
    kind = kind if kind in ("success", "error", "info") else "info"
    role = "alert" if kind == "error" else "status"
    return format_html(
        '<div class="kiln-toast kiln-toast-{}" role="{}" data-kind="{}">'
        '<span class="kiln-toast-text">{}</span>'
        '<button type="button" class="kiln-toast-close" aria-label="Dismiss" '
        "hx-on:click=\"this.closest('.kiln-toast').remove()\">×</button></div>",
        kind,
        role,
        kind,
        message,
    )


class PageRuntime:
    def __init__(
        self,
        request: HttpRequest,
        app: App,
        version: AppVersion,
        page_slug: str | None,
        *,
        preview: bool = False,
    ):
        self.request = request
        self.preview = preview
        self.app = app
        self.version = version
        pages = version.document.get("pages", [])
        if not pages:
            raise Http404("This app has no pages")
        page = (
            pages[0]
            if page_slug is None
            else next((p for p in pages if p.get("slug") == page_slug), None)
        )
        if page is None:
            raise Http404("No such page")
        self.pages = pages
        self.page = page
        self.widgets: dict[str, dict] = {w["name"]: w for w in page.get("widgets", [])}
        self.children: dict[str | None, list[str]] = {}
        for w in page.get("widgets", []):
            self.children.setdefault(w.get("parent"), []).append(w["name"])
        self.queries: dict[str, dict] = {q["name"]: q for q in version.document.get("queries", [])}
        self.url = dict(parse_qsl(urlsplit(self._current_url()).query))
        membership = app.workspace.memberships.filter(user_id=request.user.pk).first()
        self.role = Role(membership.role) if membership else Role.VIEWER
        self.busy: set[str] = set()

    # URLs -----------------------------------------------------------------------------
    def _current_url(self) -> str:
        htmx = getattr(self.request, "htmx", None)
        if htmx and htmx.current_url:
            return htmx.current_url
        return self.request.get_full_path()

    def page_url(self, slug: str | None = None) -> str:
        route = "viewer:preview_page" if self.preview else "viewer:app_page"
        return reverse(route, args=[self.app.slug, slug or self.page["slug"]])

    def _endpoint(self, name: str, *args) -> str:
        route = f"viewer:{'preview' if self.preview else 'app'}_{name}"
        return reverse(route, args=[self.app.slug, self.page["slug"], *args])

    # State and properties ---------------------------------------------------------------
    def _order(self) -> list[str]:
        """Widget names, children before their parents."""
        order: list[str] = []

        def visit(name: str) -> None:
            for child in self.children.get(name, []):
                visit(child)
            order.append(name)

        for top in self.children.get(None, []):
            visit(top)
        return order

    def context(self, states: dict[str, dict]) -> dict[str, Any]:
        context = binding_context(self.app, self.request.user, {}, url=self.url)
        context.update({name: {} for name in self.widgets})
        context.update(states)
        context["page"] = {"name": self.page.get("name"), "slug": self.page.get("slug")}
        return context

    def evaluate_props(self, name: str, context: dict) -> tuple[dict, dict[str, str]]:
        doc = self.widgets[name]
        widget_type = get_type(doc["type"])
        bindable = {p.name for p in widget_type.props if p.bindable}
        props: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for prop, raw in (doc.get("properties") or {}).items():
            if prop not in bindable:
                props[prop] = raw
                continue
            try:
                props[prop] = evaluate(f"{name}.{prop}", raw, context)
            except BindingError as exc:
                errors[prop] = str(exc)
        return widget_type.props_with_defaults(props), errors

    def specs(self, context: dict) -> tuple[dict[str, WidgetSpec], dict[str, dict[str, str]]]:
        specs: dict[str, WidgetSpec] = {}
        prop_errors: dict[str, dict[str, str]] = {}
        for name in self._order():
            props, errors = self.evaluate_props(name, context)
            children = tuple(specs[c] for c in self.children.get(name, []))
            specs[name] = WidgetSpec(name=name, type=self.widgets[name]["type"], props=props,
                                     children=children)  # fmt: skip
            prop_errors[name] = errors
        return specs, prop_errors

    def read_states(self, data: QueryDict, files: MultiValueDict) -> dict[str, dict]:
        first, _ = self.specs(self.context({}))
        states = self._states(first, data, files)
        final, _ = self.specs(self.context(states))
        return self._states(final, data, files)

    def _states(self, specs, data, files) -> dict[str, dict]:
        states: dict[str, dict] = {}
        for name in self._order():
            child_states = {c: states[c] for c in self.children.get(name, [])}
            widget_type = get_type(specs[name].type)
            states[name] = widget_type.read_state(specs[name], data, files, child_states)
        return states

    def initial_states(self) -> dict[str, dict]:
        return self.read_states(self._defaults_as_post(), MultiValueDict())

    def _defaults_as_post(self) -> QueryDict:
        """The widgets' default values, as the browser would post them."""
        data = QueryDict(mutable=True)
        for name, doc in self.widgets.items():
            default = (doc.get("properties") or {}).get("default_value")
            if default in (None, "") or (isinstance(default, str) and "<<" in default):
                continue
            if doc["type"] == "checkbox":
                if default is True or str(default).lower() in ("true", "on", "1"):
                    data[name] = "on"
            else:
                data[name] = str(default)
        return data

    # Rendering --------------------------------------------------------------------------
    def render_page(self, states: dict[str, dict]) -> SafeString:
        context = self.context(states)
        specs, prop_errors = self.specs(context)
        html = [
            self.render_cell(name, specs, prop_errors, None, [], top=True)
            for name in self.children.get(None, [])
        ]
        return mark_safe("".join(html))

    def render_cell(self, name, specs, prop_errors, states, errors, *, top=False, oob=False):
        doc = self.widgets[name]
        widget_type = get_type(doc["type"])
        children = [
            self.render_cell(c, specs, prop_errors, states, []) for c in self.children.get(name, [])
        ]
        state = None if states is None else states.get(name)
        inner = widget_type.render(
            specs[name],
            state=state,
            errors=errors,
            prop_errors=prop_errors.get(name, {}),
            children_html=children,
            attrs=self.attrs(name),
        )
        style = ""
        if top or doc.get("parent") is None:
            style = (
                f' style="grid-column: {int(doc.get("x", 0)) + 1} / span {int(doc.get("w", 12))};'
                f' grid-row: {int(doc.get("y", 0)) + 1} / span {int(doc.get("h", 1))}"'
            )
        swap = ' hx-swap-oob="outerHTML"' if oob else ""
        return (
            f'<div class="kiln-cell kiln-cell-{escape(doc["type"])}" id="w-{escape(name)}"'
            f"{style}{swap}>{inner}</div>"
        )

    def attrs(self, name: str) -> RenderAttrs:
        events: dict[str, SafeString] = {}
        for event, actions in (self.widgets[name].get("events") or {}).items():
            if not actions:
                continue
            vals = escape(json.dumps({"widget": name, "event": event}))
            confirm = self._confirm(actions)
            events[event] = format_html(
                'hx-post="{}" hx-vals="{}" hx-include="#kiln-page" '
                'hx-encoding="multipart/form-data" hx-swap="none" hx-sync="this:drop" '
                'hx-disabled-elt="this"{}',
                self._endpoint("event"),
                mark_safe(vals),
                format_html(' hx-confirm="{}"', confirm) if confirm else "",
            )
        refresh = format_html(
            'hx-post="{}" hx-include="#kiln-page" hx-target="#w-{}" hx-swap="outerHTML"',
            self._endpoint("widget", name),
            name,
        )
        return RenderAttrs(events=events, refresh=refresh)

    def _confirm(self, actions: list[dict]) -> str:
        for action in actions:
            query = self.queries.get(action.get("query", ""))
            if action.get("action") == "run_query" and query and query.get("confirm_before_run"):
                return f"Run {query['name']}?"
        return ""

    def refresh_widget(self, name: str, data, files) -> str:
        if name not in self.widgets:
            raise Http404("No such widget")
        states = self.read_states(data, files)
        specs, prop_errors = self.specs(self.context(states))
        return self.render_cell(name, specs, prop_errors, states, [])

    # Events -----------------------------------------------------------------------------
    def handle_event(self, widget: str, event: str, data, files) -> Output:
        doc = self.widgets.get(widget)
        if doc is None:
            raise Http404("No such widget")
        actions = (doc.get("events") or {}).get(event)
        if not actions:
            raise Http404("No handler for this event")
        states = self.read_states(data, files)
        out = Output()
        if not self._validate(widget, states, out):
            out.toasts.append(toast("error", "Check the highlighted fields."))
            return out
        self.run_actions(actions, f"{widget}:{event}", states, out, trigger=widget)
        return out

    def _scope(self, widget: str) -> list[str]:
        """The widgets an event validates: the enclosing form's, or the form's own."""
        form = widget
        while form is not None and self.widgets[form]["type"] != "form":
            form = self.widgets[form].get("parent")
        if form is None:
            return []
        names, todo = [], [form]
        while todo:
            name = todo.pop()
            names.append(name)
            todo.extend(self.children.get(name, []))
        return names

    def _validate(self, widget: str, states: dict, out: Output) -> bool:
        specs, _ = self.specs(self.context(states))
        ok = True
        for name in self._scope(widget):
            messages = get_type(specs[name].type).validate(specs[name], states[name])
            ok = ok and not messages
            # Only the messages are swapped: what was typed, and chosen files, stay.
            items = "".join(format_html("<div>{}</div>", m) for m in messages)
            out.fragments.append(
                f'<div class="kiln-field-errors" id="{escape(name)}-errors" role="alert" '
                f'hx-swap-oob="true">{items}</div>'
            )
        return ok

    def run_actions(self, actions, path: str, states: dict, out: Output, *, trigger: str) -> None:
        for index, action in enumerate(actions):
            self.run_action(action, f"{path}/{index}", states, out, trigger=trigger)

    def run_action(self, action: dict, path: str, states: dict, out: Output, *, trigger: str):
        kind = action.get("action")
        if kind == "run_query":
            self._run_query(action, path, states, out, trigger=trigger)
        elif kind == "show_toast":
            message = self._evaluate(f"{trigger}.toast", action.get("message", ""), states, out)
            if message is not None:
                out.toasts.append(toast(action.get("kind", "info"), str(message)))
        elif kind == "reset_widget":
            self._rerender(action.get("widget"), states, out, reset=True)
        elif kind == "set_value":
            value = self._evaluate(f"{trigger}.set_value", action.get("value"), states, out)
            target = action.get("widget")
            if target in self.widgets:
                states = {**states, target: {"value": value, "text": "" if value is None
                                             else str(value)}}  # fmt: skip
                self._rerender(target, states, out)
        elif kind == "navigate":
            params = {}
            for key, raw in (action.get("params") or {}).items():
                params[key] = self._evaluate(f"{trigger}.navigate", raw, states, out)
            target = self.page_url(action.get("page"))
            out.redirect = target + (f"?{urlencode(params)}" if params else "")
        elif kind in ("open_modal", "close_modal"):
            out.triggers["kiln-modal"] = {"name": action.get("modal"), "open": kind == "open_modal"}
        elif kind == "download":
            query = Query.objects.filter(app=self.app, name=action.get("query", "")).first()
            run = self._last_run(query)
            if run is None:
                out.toasts.append(toast("error", f"Nothing to download: {action.get('query')} "
                                                 "has not run yet."))  # fmt: skip
            else:
                filename = action.get("filename") or f"{query.name}.json"
                out.redirect = reverse("viewer:download", args=[self.app.slug, run.pk]) + (
                    "?" + urlencode({"filename": filename})
                )

    def _evaluate(self, where: str, raw, states: dict, out: Output):
        try:
            return evaluate(where, raw, self.context(states))
        except BindingError as exc:
            out.toasts.append(toast("error", str(exc)))
            return None

    def _last_run(self, query: Query | None) -> QueryRun | None:
        if query is None:
            return None
        return (
            QueryRun.objects.filter(query=query, created_by_id=self.request.user.pk)
            .order_by("-created_at", "-id")
            .first()
        )

    def _rerender(self, name, states, out: Output, reset: bool = False) -> None:
        if name not in self.widgets:
            return
        if reset:
            states = {**states, **self.initial_states()}
        specs, prop_errors = self.specs(self.context(states))
        out.fragments.append(
            self.render_cell(name, specs, prop_errors, None if reset else states, [], oob=True)
        )

    def _run_query(self, action: dict, path: str, states: dict, out: Output, *, trigger: str):
        name = action.get("query", "")
        published_query = self.queries.get(name)
        query = (
            Query.objects.select_related("datasource", "app__workspace")
            .filter(app=self.app, name=name)
            .first()
        )
        if published_query is None or query is None:
            out.toasts.append(toast("error", f"The query {name!r} does not exist any more."))
            return
        try:
            frozen = QueryDocument.model_validate(published_query)
            run = create_run(query, self.request.user, states, url=self.url, published=frozen)
        except RunRequestError as exc:
            self._finished_chain(action, path, states, out, trigger, ok=False, error=exc.message)
            return
        out.pollers.append(self.poller(run, path, trigger))

    def poller(self, run: QueryRun, path: str, trigger: str) -> str:
        # While the poller is in the page, the style inside it shows the trigger as busy
        # and stops a second click.
        vals = escape(json.dumps({"path": path, "trigger": trigger}))
        return (
            f'<div class="kiln-poller" data-run="{run.pk}" hx-post="'
            f'{self._endpoint("poll", run.pk)}" hx-vals="{vals}" hx-include="#kiln-page" '
            f'hx-trigger="load delay:{POLL_DELAY}" hx-swap="outerHTML">'
            f"<style>#w-{escape(trigger)} button {{ pointer-events: none; opacity: .65; "
            f"cursor: progress; }} #w-{escape(trigger)} button[hx-post]::after "
            f'{{ content: ""; display: inline-block; width: .8em; height: .8em; margin-left: '
            f".5em; border: 2px solid currentColor; border-right-color: transparent; "
            f"border-radius: 50%; animation: kiln-spin .7s linear infinite; }}</style></div>"
        )

    def poll(self, run_id: int, path: str, trigger: str, data, files) -> Output:
        """The poller again while the run goes on; then what its end brings."""
        run = (
            QueryRun.objects.filter(
                pk=run_id, query__app=self.app, created_by_id=self.request.user.pk
            )
            .select_related("query")
            .first()
        )
        if run is None:
            raise Http404("No such run")
        if not run.finished:
            return Output(main=self.poller(run, path, trigger))
        action = self._action_at(path)
        if action is None or (action and action.get("query") != run.query.name):
            # The path must lead to the run_query that made this run: a client cannot
            # pick another chain to continue.
            raise Http404("No such action for this run")
        states = self.read_states(data, files)
        out = Output()
        ok = run.status == "success"
        error = run.error
        if run.status == "unknown":
            error = f"Unknown outcome: {run.error} Check before sending again."
        self._finished_chain(action, path, states, out, trigger, ok=ok, error=error)
        self._rerender_readers(run.query.name, states, out)
        return out

    def _finished_chain(self, action, path, states, out, trigger, *, ok: bool, error: str):
        handlers = action.get("on_success" if ok else "on_error") or []
        if not ok and not any(h.get("action") == "show_toast" for h in handlers):
            # With no toast of its own, a failure still says what went wrong.
            out.toasts.append(toast("error", error or "The query failed."))
        self.run_actions(handlers, f"{path}/{'s' if ok else 'e'}", states, out, trigger=trigger)

    def _action_at(self, path: str) -> dict | None:
        head, *steps = path.split("/")
        widget, _, event = head.partition(":")
        if widget == "load":
            return {"query": event}
        actions = (self.widgets.get(widget, {}).get("events") or {}).get(event) or []
        action = None
        for step in steps:
            if step in ("s", "e"):
                actions = (action or {}).get("on_success" if step == "s" else "on_error") or []
                continue
            try:
                action = actions[int(step)]
            except (ValueError, IndexError):
                return None
        return action

    def _rerender_readers(self, query_name: str, states: dict, out: Output) -> None:
        specs, prop_errors = self.specs(self.context(states))
        for name, doc in self.widgets.items():
            if self._reads(doc, query_name):
                out.fragments.append(
                    self.render_cell(name, specs, prop_errors, states, [], oob=True)
                )

    @staticmethod
    def _reads(doc: dict, query_name: str) -> bool:
        for raw in (doc.get("properties") or {}).values():
            if isinstance(raw, str) and "<<" in raw:
                try:
                    if query_name in referenced_names(raw):
                        return True
                except BindingError:
                    continue
        return False

    def load_pollers(self, states: dict) -> list[str]:
        """Queries marked "run on page load" start as the page opens."""
        pollers = []
        for name, doc in self.queries.items():
            if not doc.get("run_on_page_load"):
                continue
            query = Query.objects.filter(app=self.app, name=name).first()
            if query is None:
                continue
            try:
                frozen = QueryDocument.model_validate(doc)
                run = create_run(query, self.request.user, states, url=self.url, published=frozen)
            except RunRequestError:
                continue
            pollers.append(self.poller(run, f"load:{name}", "none"))
        return pollers


def run_download(run: QueryRun, filename: str) -> tuple[bytes, str]:
    """A run's data as a file: CSV for a list of rows named .csv, JSON otherwise."""
    data = run.data
    if (
        filename.endswith(".csv")
        and isinstance(data, list)
        and all(isinstance(r, dict) for r in data)
    ):
        buffer = io.StringIO()
        columns = list(dict.fromkeys(key for row in data for key in row))
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(data)
        return buffer.getvalue().encode(), "text/csv"
    return json.dumps(data, indent=2).encode(), "application/json"
