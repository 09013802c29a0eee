"""The published app at run time: widget state from a request, bound properties,
rendering, and the action chains that widget events run.

A page is rendered from its published document (``AppVersion.app_document()``, the typed
app document of builder.schema): widgets and queries are read from there, never from
the editable rows, so that editing changes nothing for viewers until the next publish.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, QueryDict
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.datastructures import MultiValueDict
from django.utils.safestring import SafeString, mark_safe
from pydantic import ValidationError as SchemaError

from bindings import BindingError, evaluate, referenced_names
from builder.access import get_app_for_editor, get_app_for_visitor
from builder.actions import REGISTRY, RunQuery, Step, StepPath, run_chain, walk
from builder.models import App, Query
from builder.publishing import with_published
from builder.schema import AppDocument, QueryDocument, WidgetDocument
from builder.tree import Tree
from queries.context import app_query_states, binding_context
from queries.errors import RunLimitError, RunRequestError
from queries.execution import create_run
from queries.models import QueryRun, runs_of
from queries.schedule import describe
from viewer import merges
from viewer.documents import PagePlan, Published, plan_page, published_version
from widgets import RenderAttrs, Renderer, WidgetSpec, get_type
from workspaces.models import ROLE_RANK, Role

log = logging.getLogger(__name__)

PARTIALS = "viewer/partials.html"
#: The poller's pause before its next request when the server did not wait (a wait
#: setting of 0, or inside a transaction): never a loop of instant requests.
POLL_PAUSE_MS = 500
#: Where an anonymous visitor's id is kept in their session.
VISITOR_KEY = "kiln_visitor"
#: What the confirmation dialog asks when a query has no message of its own.
DEFAULT_CONFIRM = "Are you sure you want to continue?"
#: A Form's Submit with no actions wired, as its editors see it (preview, or a member who
#: may edit) and as everyone else sees it.
UNWIRED_SUBMIT_EDITOR = "This form's Submit does nothing yet: wire its submit event in the editor."
UNWIRED_SUBMIT_VIEWER = "This form is not set up to send anything yet."
#: A query field that is exactly one read of a widget: << email_input.value >> or
#: << form1.data.email >>.
SINGLE_READ = re.compile(r"\s*<<\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?\s*>>\s*")


def visitor_id(request: HttpRequest) -> str:
    """An anonymous visitor's own random id, kept in their session (made on first use):
    their runs carry it, so that they poll, read and download only their own. Empty for
    a signed-in user, whose runs carry the user."""
    if request.user.is_authenticated:
        return ""
    visitor = request.session.get(VISITOR_KEY)
    if not isinstance(visitor, str) or not visitor:
        visitor = secrets.token_urlsafe(24)
        request.session[VISITOR_KEY] = visitor
    return visitor


def load_draft(request: HttpRequest, slug: str) -> tuple[App, AppDocument]:
    """The app as it is being edited (not saved as a version), for its editors."""
    app = get_app_for_editor(request, slug)
    return app, app.to_document()


def load_app(request: HttpRequest, slug: str) -> tuple[App, Published]:
    """The app and its published version, for a member of its workspace (any role), or
    for anyone when the app is public. Checked on every request, so turning public off
    closes the app at once, and a new publish shows at once; the version's document is
    parsed once per process (viewer.documents)."""
    app = get_app_for_visitor(request, slug, with_published(App.objects.all()))
    try:
        version = published_version(app)
    except SchemaError:
        # Written by an older release and no longer readable: say so, never a 500.
        log.exception("the published version of app %s cannot be read", app.pk)
        raise Http404("This app's published version cannot be read: publish it again") from None
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
    #: Progress panels of merges started by this response (viewer.merges).
    merges: list[str] = field(default_factory=list)
    redirect: str | None = None
    triggers: dict[str, Any] = field(default_factory=dict)
    #: 429 when a run limit refused a run (the toast says which).
    status: int = 200

    def html(self) -> str:
        return render_to_string(f"{PARTIALS}#output", {"out": self})


def toast(kind: str, message: str) -> SafeString:
    kind = kind if kind in ("success", "error", "info") else "info"
    role = "alert" if kind == "error" else "status"
    return render_to_string(f"{PARTIALS}#toast", {"kind": kind, "role": role, "message": message})


class PageRuntime:
    def __init__(
        self,
        request: HttpRequest,
        app: App,
        document: AppDocument,
        page_slug: str | None,
        *,
        preview: bool = False,
        plans: dict[str, PagePlan] | None = None,
    ):
        """``plans``: the page plans of a published version, shared by its requests
        (viewer.documents.Published); without it the page is planned for this request."""
        self.request = request
        self.preview = preview
        self.visitor = visitor_id(request)
        self.app = app
        self.document = document
        pages = document.pages
        if not pages:
            raise Http404("This app has no pages")
        page = (
            pages[0] if page_slug is None else next((p for p in pages if p.slug == page_slug), None)
        )
        if page is None:
            raise Http404("No such page")
        self.pages = pages
        self.page = page
        self.widgets: dict[str, WidgetDocument] = {w.name: w for w in page.widgets}
        self.tree = Tree((w.name, w.parent) for w in page.widgets)
        self.queries: dict[str, QueryDocument] = {q.name: q for q in document.queries}
        self.url = dict(parse_qsl(urlsplit(self._current_url()).query))
        plan = None if plans is None else plans.get(page.slug)
        if plan is None:
            plan = plan_page(page)
            if plans is not None:
                plans[page.slug] = plan
        self.plan = plan
        # Loaded once per request, when first needed (see query_row and context).
        self._query_rows: dict[str, Query | None] = {}
        self._query_states: dict[str, dict] | None = None
        self._widgets_read = sorted(self.plan.reads.intersection(self.widgets))
        self._evaluated: tuple[dict, tuple] | None = None

    # URLs -----------------------------------------------------------------------------
    def _current_url(self) -> str:
        htmx = getattr(self.request, "htmx", None)
        if htmx and htmx.current_url:
            return htmx.current_url
        return self.request.get_full_path()

    def page_url(self, slug: str | None = None) -> str:
        route = "viewer:preview_page" if self.preview else "viewer:app_page"
        return reverse(route, args=[self.app.slug, slug or self.page.slug])

    def _endpoint(self, name: str, *args) -> str:
        route = f"viewer:{'preview' if self.preview else 'app'}_{name}"
        return reverse(route, args=[self.app.slug, self.page.slug, *args])

    def merge_endpoint(self, name: str, *args) -> str:
        """The URL of a merge panel's view ``name`` (merge, merge_stop...) on this page."""
        return self._endpoint(name, *args)

    # State and properties ---------------------------------------------------------------
    def _order(self) -> list[str]:
        """Widget names, children before their parents (a container reads its children's
        states); widgets caught in a parent cycle are not drawn."""
        return self.tree.children_first(unreachable=False)

    @functools.cached_property
    def role(self) -> Role:
        """The user's role in the app's workspace (a viewer when not a member)."""
        membership = self.app.workspace.memberships.filter(user_id=self.request.user.pk).first()
        return Role(membership.role) if membership else Role.VIEWER

    def sandbox_notes(self) -> list[str]:
        """The banners of the sandboxed datasources the page's app uses, for its editors
        and admins only: they are trying the app; its viewers and visitors use it, and
        see it as they will once sandbox mode is off."""
        user_id = self.request.user.pk
        if user_id is None or not self.queries:
            return []
        names = {query.datasource for query in self.queries.values()}
        datasources = self.app.workspace.datasources.filter(name__in=names)
        if not self.preview:
            # The role is checked in the same statement: a viewer's page costs one query.
            datasources = datasources.filter(
                workspace__memberships__user_id=user_id,
                workspace__memberships__role__in=[Role.EDITOR, Role.ADMIN],
            )
        notes = (ds.sandbox_note for ds in datasources.order_by("name"))
        return list(dict.fromkeys(note for note in notes if note))

    def query_row(self, name: str) -> Query | None:
        """The app's query ``name`` (None when there is none), read once per request."""
        if name not in self._query_rows:
            self._query_rows[name] = (
                Query.objects.filter(app=self.app, name=name)
                .select_related("datasource", "app__workspace")
                .first()
            )
        return self._query_rows[name]

    def context(self, states: dict[str, dict]) -> dict[str, Any]:
        # The queries' part is read once per request: every evaluation of the request
        # sees the same runs, until a run is added (see start_run). Only the queries the
        # page's bindings read are loaded (a widget's name is never a query's here).
        if self._query_states is None:
            reads = self.plan.reads.difference(self.widgets)
            self._query_states = app_query_states(
                self.app, self.request.user, self.visitor, reads=reads
            )
        context = binding_context(
            self.app,
            self.request.user,
            {},
            url=self.url,
            queries=self._query_states,
            visitor=self.visitor,
        )
        context.update({name: {} for name in self.widgets})
        context.update(states)
        context["page"] = {"name": self.page.name, "slug": self.page.slug}
        return context

    def evaluate_props(self, name: str, context: dict) -> tuple[dict, dict[str, str]]:
        doc = self.widgets[name]
        widget_type = get_type(doc.type)
        bindable = {p.name for p in widget_type.props if p.bindable}
        props: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for prop, raw in doc.properties.items():
            if prop not in bindable or (name, prop) in self.plan.literal:
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
            children = tuple(specs[c] for c in self.tree.children(name))
            specs[name] = WidgetSpec(
                name=name, type=self.widgets[name].type, props=props, children=children
            )
            prop_errors[name] = errors
        return specs, prop_errors

    def evaluated(
        self, states: dict[str, dict]
    ) -> tuple[dict[str, WidgetSpec], dict[str, dict[str, str]]]:
        """:meth:`specs` with ``states``. Only the states of the widgets that the page's
        bindings read can change them: with the same ones as the last call, the last
        result is given again (a page's GET would otherwise evaluate every property
        three times, for the same values)."""
        read = {name: states.get(name, {}) for name in self._widgets_read}
        if self._evaluated is not None and self._evaluated[0] == read:
            return self._evaluated[1]
        result = self.specs(self.context(states))
        self._evaluated = (read, result)
        return result

    def read_states(self, data: QueryDict, files: MultiValueDict) -> dict[str, dict]:
        first, _ = self.evaluated({})
        states = self._states(first, data, files)
        final, _ = self.evaluated(states)
        if final is first:
            return states  # the same specs read the same data the same way
        return self._states(final, data, files)

    def _states(self, specs, data, files) -> dict[str, dict]:
        states: dict[str, dict] = {}
        for name in self._order():
            child_states = {c: states[c] for c in self.tree.children(name)}
            widget_type = get_type(specs[name].type)
            states[name] = widget_type.read_state(specs[name], data, files, child_states)
        return states

    def initial_states(self) -> dict[str, dict]:
        return self.read_states(self._defaults_as_post(), MultiValueDict())

    def _defaults_as_post(self) -> QueryDict:
        """The widgets' default values, as the browser would post them."""
        data = QueryDict(mutable=True)
        for name, doc in self.widgets.items():
            default = doc.properties.get("default_value")
            if default in (None, "") or (isinstance(default, str) and "<<" in default):
                continue
            posted = get_type(doc.type).posted_default(default)
            if posted is not None:
                data[name] = posted
        return data

    # Rendering --------------------------------------------------------------------------
    def render_page(self, states: dict[str, dict]) -> SafeString:
        specs, prop_errors = self.evaluated(states)
        renderer = Renderer()  # one template context for every cell of the page
        html = [
            self.render_cell(name, specs, prop_errors, None, [], top=True, renderer=renderer)
            for name in self.tree.children(None)
        ]
        return mark_safe("".join(html))

    def render_cell(
        self,
        name: str,
        specs: dict[str, WidgetSpec],
        prop_errors: dict[str, dict[str, str]],
        states: dict[str, dict] | None,
        errors: list[str],
        *,
        top: bool = False,
        oob: bool = False,
        renderer: Renderer | None = None,
    ) -> SafeString:
        renderer = renderer or Renderer()
        doc = self.widgets[name]
        widget_type = get_type(doc.type)
        children = [
            self.render_cell(c, specs, prop_errors, states, [], renderer=renderer)
            for c in self.tree.children(name)
        ]
        state = None if states is None else states.get(name)
        inner = widget_type.render(
            specs[name],
            state=state,
            errors=errors,
            prop_errors=prop_errors.get(name, {}),
            children_html=children,
            attrs=self.attrs(name),
            renderer=renderer,
        )
        context = {"name": name, "type": doc.type, "inner": inner, "oob": oob}
        if top or doc.parent is None:
            context["place"] = grid_place(doc)
        return renderer.render(f"{PARTIALS}#cell", context)

    def attrs(self, name: str) -> RenderAttrs:
        events: dict[str, SafeString] = {}
        for event, actions in self.widgets[name].events.items():
            if not actions and not self._own_submit(name, event):
                continue
            merge = merges.merge_query_of(self, name, event)
            context = {
                "url": self._endpoint("event"),
                "vals": json.dumps({"widget": name, "event": event}),
                "confirm": self._confirm(actions),
                "merge_count": self._endpoint("merge_count") if merge else "",
            }
            events[event] = render_to_string(f"{PARTIALS}#event_attrs", context)
        if self._own_submit(name, "submit") and "submit" not in events:
            # A Form's own Submit button always posts: its fields are checked, and a form
            # with nothing wired says so (handle_event).
            context = {
                "url": self._endpoint("event"),
                "vals": json.dumps({"widget": name, "event": "submit"}),
                "confirm": "",
            }
            events["submit"] = render_to_string(f"{PARTIALS}#event_attrs", context)

        def refresh() -> SafeString:
            context = {"url": self._endpoint("widget", name), "name": name}
            return render_to_string(f"{PARTIALS}#refresh_attrs", context)

        return RenderAttrs(events=events, refresh=refresh)

    def _own_submit(self, name: str, event: str) -> bool:
        """The event is a Form's own Submit button, which posts even with no actions."""
        doc = self.widgets[name]
        widget_type = get_type(doc.type)
        return event == "submit" and widget_type.validates_children and event in widget_type.events

    def _confirm(self, actions: list[dict]) -> str:
        """What the page's confirmation dialog asks before the event posts: the message
        of the first query it runs that asks first (a merge always asks: viewer.js puts
        the count in, see merge_confirmation); empty when none does."""
        for action in actions:
            query = self.queries.get(action.get("query", ""))
            if action.get("action") != RunQuery.key or query is None:
                continue
            if merges.is_merge_query(query):
                return "Send these emails?"
            if query.confirm_before_run:
                return query.confirm_message.strip() or DEFAULT_CONFIRM
        return ""

    def refresh_widget(self, name: str, data, files) -> str:
        if name not in self.widgets:
            raise Http404("No such widget")
        states = self.read_states(data, files)
        specs, prop_errors = self.evaluated(states)
        return self.render_cell(name, specs, prop_errors, states, [])

    # Events -----------------------------------------------------------------------------
    def handle_event(self, widget: str, event: str, data, files) -> Output:
        doc = self.widgets.get(widget)
        if doc is None:
            raise Http404("No such widget")
        actions = doc.events.get(event) or []
        unwired = not actions and self._own_submit(widget, event)
        if not actions and not unwired:
            raise Http404("No handler for this event")
        states = self.read_states(data, files)
        out = Output()
        if not self._validate(widget, states, out, self._inputs_read(actions)):
            out.toasts.append(toast("error", "Check the highlighted fields."))
            return out
        if unwired:
            editor = self.preview or ROLE_RANK[self.role] >= ROLE_RANK[Role.EDITOR]
            out.toasts.append(
                toast("info", UNWIRED_SUBMIT_EDITOR if editor else UNWIRED_SUBMIT_VIEWER)
            )
            return out
        step = Step(StepPath(event), widget, states)
        run_chain(actions, step.path, step, ActionRunner(self, out))
        return out

    def _scope(self, widget: str) -> list[str]:
        """The widgets an event validates: the enclosing form's, or the form's own."""
        lineage = [widget, *self.tree.ancestors(widget)]
        form = next(
            (name for name in lineage if get_type(self.widgets[name].type).validates_children),
            None,
        )
        return [] if form is None else self.tree.subtree(form)

    def _inputs_read(self, actions: list[dict]) -> list[str]:
        """The widgets whose state the queries run by ``actions`` (their chains too)
        read in their fields and send time, a form or container with everything in it:
        their own rules must hold before the run, and their messages show under them,
        not under a query field."""
        found: list[str] = []
        for kind, action, _where in walk(actions, "event"):
            query = self.queries.get(str(action.get("query") or ""))
            if kind.key != RunQuery.key or query is None:
                continue
            when = action.get("send_at") or query.send_at
            for template in [*query.fields.values(), when]:
                try:
                    names = referenced_names(template)
                except BindingError:
                    continue  # the run itself reports it, naming the field
                for name in sorted(names & self.widgets.keys()):
                    found.extend(self.tree.subtree(name))
        return list(dict.fromkeys(found))

    def _validate(self, widget: str, states: dict, out: Output, read: list[str]) -> bool:
        specs, _ = self.evaluated(states)
        ok = True
        scope = list(dict.fromkeys([*self._scope(widget), *read]))
        for name in scope:
            if name not in specs:
                continue  # caught in a parent cycle: not drawn, nothing to check
            messages = get_type(specs[name].type).validate(specs[name], states[name])
            ok = ok and not messages
            # Only the messages are swapped: what was typed, and chosen files, stay.
            out.fragments.append(
                render_to_string(f"{PARTIALS}#field_errors", {"name": name, "errors": messages})
            )
        # Files posted for a picker outside the form (or straight to this endpoint) reach
        # a run through << files2.files >> all the same: their limits hold too.
        for name in self._order():
            if name in scope or not states.get(name, {}).get("files"):
                continue
            messages = get_type(specs[name].type).validate(specs[name], states[name])
            if messages:
                ok = False
                out.toasts.extend(toast("error", message) for message in messages)
                out.fragments.append(
                    render_to_string(f"{PARTIALS}#field_errors", {"name": name, "errors": messages})
                )
        return ok

    def field_error(self, query: str, field: str, message: str, out: Output) -> bool:
        """A run's error naming a query field that is exactly one read of a widget's value
        is shown under that widget too: that is what the user must fix. False when no
        widget shows it."""
        widget = self._widget_of_field(query, field)
        if widget is not None:
            context = {"name": widget, "errors": [message]}
            out.fragments.append(render_to_string(f"{PARTIALS}#field_errors", context))
        return widget is not None

    def _widget_of_field(self, query: str, field: str) -> str | None:
        published = self.queries.get(query)
        template = published.fields.get(field) if published is not None and field else None
        match = SINGLE_READ.fullmatch(template) if isinstance(template, str) else None
        if match is None or match.group(1) not in self.widgets:
            return None
        name, key, inner = match.groups()
        if key == "data" and inner in self.widgets and inner in self.tree.subtree(name):
            return inner
        return name

    def evaluate(self, where: str, raw: Any, states: dict, out: Output) -> Any:
        """``raw`` evaluated with ``states``; None and an error toast if it fails."""
        try:
            return evaluate(where, raw, self.context(states))
        except BindingError as exc:
            out.toasts.append(toast("error", str(exc)))
            return None

    def last_run(self, query: Query | None) -> QueryRun | None:
        if query is None:
            return None
        return (
            QueryRun.objects.filter(runs_of(self.request.user, self.visitor), query=query)
            .order_by("-created_at", "-id")
            .first()
        )

    def rerender(self, name: str, states: dict, out: Output, reset: bool = False) -> None:
        if name not in self.widgets:
            return
        if reset:
            states = {**states, **self.initial_states()}
        specs, prop_errors = self.evaluated(states)
        out.fragments.append(
            self.render_cell(name, specs, prop_errors, None if reset else states, [], oob=True)
        )

    def start_run(self, name: str, states: dict, send_at: str = "") -> QueryRun | None:
        """A run of the published query ``name`` with ``states`` (``send_at``: a
        run_query action's own, over the query's); None when the query is gone. Raises
        RunRequestError for bad input."""
        published_query = self.queries.get(name)
        query = self.query_row(name)
        if published_query is None or query is None:
            return None
        run = create_run(
            query,
            self.request.user,
            states,
            url=self.url,
            published=published_query,
            request=self.request,
            visitor=self.visitor,
            send_at=send_at,
        )
        # The new run is what << name.status >> and the like read from now on.
        self._query_states = None
        self._evaluated = None
        return run

    def wait_for(self, run: QueryRun, seconds: float, *, until_retrying: bool = False) -> bool:
        """``run`` re-read until it ends or ``seconds`` pass (QueryRun.wait); False when
        there was nothing to wait for: inside a transaction (a test's) the run is not even
        enqueued yet, and a wait of 0 is a plain read."""
        if connection.in_atomic_block or seconds <= 0:
            run.refresh_from_db()
            return False
        run.wait(seconds, until_retrying=until_retrying)
        return True

    def poller(
        self, run: QueryRun, path: StepPath | None, trigger: str, *, pause: bool = False
    ) -> SafeString:
        """The element that polls ``run``: its request is sent at once (the server waits
        for the run's end), or after POLL_PAUSE_MS with ``pause``."""
        # While the poller is in the page, viewer.js shows its trigger as busy.
        vals = {"path": "" if path is None else str(path), "trigger": trigger}
        context = {
            "run": run,
            "url": self._endpoint("poll", run.pk),
            "vals": json.dumps(vals),
            "trigger": trigger,
            "delay_ms": POLL_PAUSE_MS if pause else 0,
        }
        return render_to_string(f"{PARTIALS}#poller", context)

    def poll(self, run_id: int, path: str, trigger: str, data, files) -> Output:
        """The poller again while the run goes on; then what its end brings.

        ``path`` is the StepPath of the run_query in ``trigger``'s events that made the
        run, or empty for a query run on page load."""
        run = (
            QueryRun.objects.filter(
                runs_of(self.request.user, self.visitor), pk=run_id, query__app=self.app
            )
            .select_related("query")
            .first()
        )
        if run is None:
            raise Http404("No such run")
        # The path must lead to the run_query that made this run: a client cannot pick
        # another chain to continue.
        step_path, action = self._action_at(trigger, path, run.query.name)
        # A long poll: answered as soon as the run ends (queries.notify wakes it), or
        # with the next poller, sent at once, when it has not ended in this time.
        if run.scheduled_later:
            # Nothing to wait for until its time: said so, and no more polling.
            out = Output()
            self.scheduled(run, self.read_states(data, files), out)
            return out
        poll_wait = settings.KILN_VIEWER_POLL_WAIT_SECONDS
        waited = False
        if not run.retries_after(poll_wait):
            waited = self.wait_for(run, poll_wait)
        if run.retries_after(poll_wait):
            # Minutes away (a greylisting server): said when, and no more polling.
            out = Output()
            self.retrying_later(run, self.read_states(data, files), out)
            return out
        if not run.finished:
            return Output(main=self.poller(run, step_path, trigger, pause=not waited))
        out = Output()
        step = Step(step_path, trigger, self.read_states(data, files))
        self.finish_run(run, action, step, out)
        return out

    def finish_run(self, run: QueryRun, action: dict, step: Step, out: Output) -> None:
        """What a run's end brings, into ``out``: the run_query's on_success or on_error
        chain, the error under the widget a failed field reads, and every widget that
        reads the query re-rendered."""
        ok = run.status == "sent"
        error = run.error
        if run.status == "unknown":
            error = f"Unknown outcome: {run.error} Check before sending again."
        REGISTRY[RunQuery.key].finished(
            action, step, ActionRunner(self, out), ok=ok, error=error, told=run.is_merge
        )
        if not ok and run.error_field:
            self.field_error(run.query.name, run.error_field, error or run.error, out)
        self._rerender_readers(run.query.name, step.states, out)

    def scheduled(self, run: QueryRun, states: dict, out: Output) -> None:
        """A run waiting for its send_at: said so, and no poller (it would poll for
        nothing until then); the widgets that read the query show it scheduled. Its
        on_success and on_error chains do not run: it has not been sent."""
        assert run.send_at is not None
        self._later(run, f"Scheduled for {describe(run.send_at)}.", states, out)

    def retrying_later(self, run: QueryRun, states: dict, out: Output) -> None:
        """A run waiting for a retry later than a poll waits (a temporary failure, such
        as a greylisting server's 451): said when and why, as a scheduled run is."""
        self._later(run, run.retry_note, states, out)

    def _later(self, run: QueryRun, message: str, states: dict, out: Output) -> None:
        out.toasts.append(toast("info", message))
        self._rerender_readers(run.query.name, states, out)

    def _action_at(self, trigger: str, path: str, query: str) -> tuple[StepPath | None, dict]:
        """The run_query at ``path`` of ``trigger``'s events, which must run ``query``."""
        if not path:
            published_query = self.queries.get(query)
            if published_query is None or not published_query.run_on_page_load:
                raise Http404("No such action for this run")
            return None, {"query": query}
        try:
            step_path = StepPath.parse(path)
        except ValueError:
            raise Http404("No such action for this run") from None
        widget = self.widgets.get(trigger)
        action = step_path.find(widget.events if widget is not None else {})
        if (
            not step_path.is_action
            or not isinstance(action, dict)
            or action.get("action") != RunQuery.key
            or action.get("query") != query
        ):
            raise Http404("No such action for this run")
        return step_path, action

    def _rerender_readers(self, query_name: str, states: dict, out: Output) -> None:
        specs, prop_errors = self.evaluated(states)
        for name, doc in self.widgets.items():
            if self._reads(doc, query_name):
                out.fragments.append(
                    self.render_cell(name, specs, prop_errors, states, [], oob=True)
                )

    @staticmethod
    def _reads(doc: WidgetDocument, query_name: str) -> bool:
        for raw in doc.properties.values():
            if isinstance(raw, str) and "<<" in raw:
                try:
                    if query_name in referenced_names(raw):
                        return True
                except BindingError:
                    continue
        return False

    # Merges -----------------------------------------------------------------------------
    def merge_started(self, run: QueryRun, action: dict, step: Step, out: Output) -> None:
        """A merge's click answers at once with its progress panel; the run's poller
        waits for its end as for any run, then the button's on_success / on_error chain
        runs. In the embedded default the rows were sent as the merge was stored."""
        self.wait_for(run, 0)
        if run.finished:
            self.finish_run(run, action, step, out)
            out.toasts.append(toast(*merges.end_message(run.progress())))
        else:
            out.pollers.append(self.poller(run, step.path, step.trigger))
        out.merges.append(merges.panel(self, run))

    def merge_panels(self) -> list[SafeString]:
        """The panels the page shows when it loads (viewer.merges.shown_on_load)."""
        return [merges.panel(self, run) for run in merges.shown_on_load(self)]

    def merge_confirmation(self, widget: str, event: str, data, files) -> dict[str, Any]:
        """What the dialog asks before ``widget``'s ``event`` starts a merge, with the
        count of emails it would send now; ``error`` (and no count) when the merge would
        not start: the click itself then says why."""
        query = merges.merge_query_of(self, widget, event)
        if query is None:
            raise Http404("This event starts no merge")
        states = self.read_states(data, files)
        try:
            count = merges.confirm_count(self, query, states)
        except RunRequestError as exc:
            return {"error": exc.message}
        return {"count": count, "message": merges.confirm_message(count, query)}

    def merge_refresh(self, run_id: int) -> Output:
        """A merge's panel again, once the merge ended or MERGE_REFRESH_SECONDS passed;
        the toast of its end with the first panel that shows it ended."""
        parent = merges.merge_of(self, run_id)
        waited = self.wait_for(parent, merges.MERGE_REFRESH_SECONDS)
        # Ended already (a row sent again since): the next request after a pause.
        progress = parent.progress()
        out = Output(main=merges.panel(self, parent, pause=not waited or parent.finished))
        if progress["finished"]:
            out.toasts.append(toast(*merges.end_message(progress)))
        return out

    def merge_act(self, run_id: int, act: str, row_id: int | None = None) -> Output:
        """Stop, Send the rest or Retry on a merge, answered with its panel (live again:
        rows may be sent again) and a toast saying what was done."""
        parent = merges.merge_of(self, run_id)
        doing = {"stop": merges.stop, "resume": merges.resume}
        out = Output()
        try:
            if act == "retry" and row_id is not None:
                message = merges.retry(self, parent, row_id)
            else:
                message = doing[act](self, parent)
        except RunRequestError as exc:
            out.toasts.append(toast("error", exc.message))
        else:
            out.toasts.append(toast("info", message))
        parent.refresh_from_db()
        out.main = merges.panel(self, parent, live=True)
        return out

    def load_url(self) -> str:
        """Where the page POSTs to start its "run on page load" queries; empty when it
        has none. A POST with the CSRF token, never the page's GET: a link or a
        prefetch must not send anything."""
        if not any(doc.run_on_page_load for doc in self.queries.values()):
            return ""
        return self._endpoint("load")

    def load_runs(self) -> Output:
        """Queries marked "run on page load" start, each with a poller."""
        out = Output()
        states = self.initial_states()
        for name, doc in self.queries.items():
            if not doc.run_on_page_load:
                continue
            try:
                run = self.start_run(name, states)
            except RunLimitError as exc:
                out.status = 429
                out.toasts.append(toast("error", exc.message))
                break
            except RunRequestError:
                continue
            if run is not None:
                out.pollers.append(self.poller(run, None, ""))
        return out


class ActionRunner:
    """What the actions of one request do to its page (builder.actions.Runner)."""

    def __init__(self, runtime: PageRuntime, out: Output):
        self.runtime = runtime
        self.out = out

    def evaluate(self, where: str, raw: Any, step: Step) -> Any:
        return self.runtime.evaluate(where, raw, step.states, self.out)

    def toast(self, kind: str, message: str) -> None:
        self.out.toasts.append(toast(kind, message))

    def rerender(self, widget: str, step: Step, *, reset: bool = False) -> None:
        self.runtime.rerender(widget, step.states, self.out, reset=reset)

    def navigate(self, page: str, params: dict[str, Any]) -> None:
        target = self.runtime.page_url(page or None)
        self.out.redirect = target + (f"?{urlencode(params)}" if params else "")

    def modal(self, name: str, *, open: bool) -> None:
        self.out.triggers["kiln-modal"] = {"name": name, "open": open}

    def run_query(self, query: str, action: dict, step: Step) -> None:
        try:
            run = self.runtime.start_run(query, step.states, str(action.get("send_at") or ""))
        except RunLimitError as exc:
            # Nothing ran, so no on_error chain: the limit's own message is shown.
            self.out.status = 429
            self.toast("error", exc.message)
            return
        except RunRequestError as exc:
            REGISTRY[RunQuery.key].finished(action, step, self, ok=False, error=exc.message)
            shown = self.runtime.field_error(query, exc.field, exc.message, self.out)
            if not shown and RunQuery.has_own_error_toast(action):
                # Nothing was stored, so << query.error >> in that toast cannot say why.
                self.toast("error", exc.message)
            return
        if run is None:
            self.toast("error", f"The query {query!r} does not exist any more.")
            return
        if run.is_merge:
            self.runtime.merge_started(run, action, step, self.out)
            return
        if run.scheduled_later:
            self.runtime.scheduled(run, step.states, self.out)
            return
        # The click's own response carries the result when the run ends soon: at once in
        # the embedded default (the task ran as the run was committed), within a short
        # wait woken by its end with a worker.
        self.runtime.wait_for(run, settings.KILN_VIEWER_CLICK_WAIT_SECONDS, until_retrying=True)
        if run.finished:
            self.runtime.finish_run(run, action, step, self.out)
        elif run.retries_after(settings.KILN_VIEWER_POLL_WAIT_SECONDS):
            self.runtime.retrying_later(run, step.states, self.out)
        else:
            self.out.pollers.append(self.runtime.poller(run, step.path, step.trigger))

    def download(self, query: str, filename: str) -> None:
        row = self.runtime.query_row(query)
        run = self.runtime.last_run(row)
        if run is None:
            self.toast("error", f"Nothing to download: {query} has not run yet.")
            return
        url = reverse("viewer:download", args=[self.runtime.app.slug, run.pk])
        self.out.redirect = f"{url}?{urlencode({'filename': filename or f'{query}.json'})}"

    def run_chain(self, actions: list[dict], path: StepPath, step: Step) -> None:
        run_chain(actions, path, step, self)


def grid_place(doc: WidgetDocument) -> dict[str, str]:
    """Where a top-level cell sits on the page's 12-column grid (0-based x and y), as
    text: a number in a template goes through localization, which cost more than the
    rest of a cell."""
    x = min(max(doc.x, 0), 11)
    w = min(max(doc.w, 1), 12)
    return {"x": str(x), "w": str(w), "y": str(max(doc.y, 0)), "h": str(max(doc.h, 1))}


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
