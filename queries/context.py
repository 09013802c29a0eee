"""The names a binding can read when a query runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from bindings.namespace import CONTEXT_NAMES, QUERY_KEYS
from builder.models import App, Page, Query
from builder.names import validate_identifier
from datasources.plugins import Plugin
from queries.errors import RunRequestError
from queries.models import QueryRun, runs_of

RECENT_RUNS = 50


class UrlParams(dict):
    """``<< url.x >>``: a parameter missing from the URL is None, not an error, since a
    page is opened with or without its parameters (``<< url.id or 'new' >>``)."""

    def __missing__(self, key):
        return None


def run_row(run: QueryRun, plugin: Plugin | None) -> dict[str, Any]:
    """One run as a row of ``<< query_name.runs >>`` (e.g. for a Table): its status
    and times, and the columns its plugin summarises it with (``run_summary``; none
    when the plugin is not installed any more)."""
    summary = plugin.run_summary(run.action, run.fields) if plugin is not None else {}
    return {
        "id": run.pk,
        "status": run.status,
        **summary,
        "error": run.retry_note or run.error,
        "created_at": _when(run.created_at),
        "finished_at": _when(run.finished_at),
    }


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def query_state(runs: list[QueryRun], plugin: Plugin | None) -> dict[str, Any]:
    """What ``<< query_name.x >>`` sees, from the user's runs of that query, newest first:
    the latest run's ``data``, ``error`` ("Retrying at …: <reason>" while it waits to
    retry), ``status``, ``last_run_at`` and ``send_at`` (when
    it is or was scheduled for), and ``runs``; ``progress`` when the latest run is a mail
    merge (its counts: QueryRun.progress)."""
    rows = [run_row(run, plugin) for run in runs]
    if not runs:
        return {**dict.fromkeys(QUERY_KEYS), "runs": []}
    run = runs[0]
    return {
        "data": run.data,
        # While it waits to retry, its error says so: the failure is not final.
        "error": run.retry_note or run.error or None,
        "status": run.status,
        "last_run_at": run.finished_at.isoformat() if run.finished_at else None,
        "send_at": run.send_at.isoformat() if run.send_at else None,
        "runs": rows,
        "progress": run.progress() if run.is_merge else None,
    }


def recent_runs(queries: Iterable[Query], user, visitor: str = "") -> dict[int, list[QueryRun]]:
    """The user's (or anonymous ``visitor``'s) latest RECENT_RUNS runs of each query (by
    query id, newest first), in one SQL query however many queries there are. A mail
    merge is one run (its parent): its rows are not listed."""
    ids = [query.pk for query in queries]
    found: dict[int, list[QueryRun]] = {pk: [] for pk in ids}
    if not ids:
        return found
    newest_first = [F("created_at").desc(), F("id").desc()]
    runs = (
        QueryRun.objects.filter(runs_of(user, visitor), query_id__in=ids, parent__isnull=True)
        .annotate(rank=Window(RowNumber(), partition_by=F("query_id"), order_by=newest_first))
        .filter(rank__lte=RECENT_RUNS)
        .order_by("query_id", *newest_first)
    )
    for run in runs:
        found[run.query_id].append(run)
    return found


def query_states(queries: Iterable[Query], user, visitor: str = "") -> dict[str, dict[str, Any]]:
    """``<< query_name.x >>`` for every query, by name (see :func:`query_state`)."""
    queries = list(queries)
    runs = recent_runs(queries, user, visitor)
    return {query.name: query_state(runs[query.pk], query.datasource.plugin) for query in queries}


def app_query_states(
    app: App, user, visitor: str = "", *, reads: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """``<< query_name.x >>`` for the app's queries that bindings read: those named in
    ``reads`` (every query of the app when None). Two SQL queries (the queries, then
    all their runs), none when no name read can be a query: the cost follows what the
    bindings read, not how many queries the app has."""
    rows = Query.objects.filter(app=app).select_related("datasource")
    if reads is not None:
        names = set(reads).difference(CONTEXT_NAMES)
        if not names:
            return {}
        rows = rows.filter(name__in=sorted(names))
    return query_states(rows, user, visitor)


def user_binding(user) -> dict[str, Any]:
    """``<< user.x >>``: who is using the app; empty, with ``anonymous`` true, for a
    visitor of a public app who has not signed in."""
    if user is None or not getattr(user, "is_authenticated", False):
        return {"username": "", "email": "", "name": "", "anonymous": True}
    return {
        "username": user.get_username(),
        "email": getattr(user, "email", ""),
        "name": user.get_full_name(),
        "anonymous": False,
    }


def check_inputs(inputs: Any) -> dict[str, dict]:
    """Widget state sent by a page or an API caller: ``{widget_name: {...}}``."""
    if inputs is None:
        return {}
    if not isinstance(inputs, dict):
        raise RunRequestError("inputs", "inputs must be an object of widget names to states.")
    for name, state in inputs.items():
        try:
            validate_identifier(name)
        except ValidationError as exc:
            raise RunRequestError(f"inputs.{name}", f"inputs: {exc.messages[0]}") from None
        if not isinstance(state, dict):
            raise RunRequestError(
                f"inputs.{name}",
                f'inputs.{name} must be an object such as {{"value": ...}}, '
                f"not {type(state).__name__}.",
            )
    return inputs


def binding_context(
    app: App,
    user,
    inputs: dict[str, dict],
    url: dict | None = None,
    page: Page | None = None,
    *,
    queries: dict[str, dict] | None = None,
    visitor: str = "",
    reads: Iterable[str] | None = None,
) -> dict[str, Any]:
    """What bindings read. ``queries``: the queries' part already read by the caller
    (:func:`app_query_states`), else it is read here: only the queries named in
    ``reads`` (the names the bindings to evaluate read: ``referenced_names``), or
    every query of the app when None. ``visitor``: an anonymous visitor's id (their
    runs are theirs)."""
    # Widgets of the page with no state sent still exist: reading them is an error about
    # their attribute, not an unknown name.
    context: dict[str, Any] = {}
    if page is not None:
        context.update(dict.fromkeys(page.widgets.values_list("name", flat=True), {}))
    context.update(inputs)
    if queries is None:
        queries = app_query_states(app, user, visitor, reads=reads)
    context.update(queries)
    context.update(
        {
            "user": user_binding(user),
            "url": UrlParams(url or {}),
            "app": {"name": app.name, "slug": app.slug},
            "page": {"name": page.name, "slug": page.slug} if page else None,
        }
    )
    return context
