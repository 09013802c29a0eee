"""Mail merges on the published page: the progress panel of a merge (a <progress> bar,
sent / failed / remaining / rate, Stop, Send the rest, the failed rows with a Retry
each), the count the confirmation asks about, and who may act on a merge.

A panel is an htmx partial that asks for itself again: each request waits up to
MERGE_REFRESH_SECONDS for the merge's end (QueryRun.wait, woken by queries.notify), then
answers with the numbers as they are. The page draws the panels of its person's merges
when it loads, so a reload shows a merge where it is. The end of a merge is a toast
("200 sent", "3 of 200 failed"), sent once, by the refresh that first sees it ended.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.db.models import Q
from django.http import Http404
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString

from builder.actions import RunQuery, walk
from builder.schema import QueryDocument
from queries.merge import preview_merge, resume_merge, retry_row, stop_merge
from queries.models import QueryRun, RunStatus, runs_of
from queries.schedule import describe
from workspaces.models import ROLE_RANK, Role

if TYPE_CHECKING:
    from viewer.runtime import PageRuntime

PARTIALS = "viewer/partials.html"
#: How long a panel's request waits for the merge's end before answering with the
#: numbers as they are: about one update a second while a merge goes on.
MERGE_REFRESH_SECONDS = 1.0
#: The failed rows a panel lists (each with its own Retry); the rest are counted.
FAILED_ROWS_SHOWN = 20
#: A merge that ended this long ago is no longer drawn when the page loads.
SHOWN_AFTER_END = timedelta(hours=1)


def is_merge_query(doc: QueryDocument | None) -> bool:
    return doc is not None and bool((doc.for_each or "").strip())


def merge_query_of(runtime: PageRuntime, widget: str, event: str) -> QueryDocument | None:
    """The first merge query that ``widget``'s ``event`` runs (its chains included)."""
    doc = runtime.widgets.get(widget)
    actions = doc.events.get(event) or [] if doc is not None else []
    for kind, action, _where in walk(actions, "event"):
        if kind.key != RunQuery.key:
            continue
        query = runtime.queries.get(str(action.get("query") or ""))
        if is_merge_query(query):
            return query
    return None


def confirm_count(runtime: PageRuntime, query: QueryDocument, states: dict) -> int:
    """How many emails a merge of ``query`` would send with ``states``; nothing is
    stored. Raises RunRequestError when for_each (or the query) is wrong."""
    row = runtime.query_row(query.name)
    if row is None:
        raise Http404("No such query")
    preview = preview_merge(
        row,
        runtime.request.user,
        states,
        url=runtime.url,
        published=query,
        visitor=runtime.visitor,
        limit=0,
    )
    return preview.count


def confirm_message(count: int, query: QueryDocument) -> str:
    """What the page's dialog asks before a merge starts: the count first."""
    question = f"Send {count} email{'' if count == 1 else 's'}?"
    own = query.confirm_message.strip() if query.confirm_before_run else ""
    return f"{question}\n{own}" if own else question


def may_act_on_all(runtime: PageRuntime) -> bool:
    """An editor of the app (or its preview) may act on anyone's merge of the app."""
    return runtime.preview or ROLE_RANK[runtime.role] >= ROLE_RANK[Role.EDITOR]


def merge_of(runtime: PageRuntime, run_id: int) -> QueryRun:
    """The merge ``run_id`` of this app that this person may act on: their own, or
    anyone's for an editor. Anything else (another app's, another visitor's, a row's
    run) is 404, never 403: its existence is not told."""
    mine = Q() if may_act_on_all(runtime) else runs_of(runtime.request.user, runtime.visitor)
    run = (
        QueryRun.objects.filter(mine, pk=run_id, query__app=runtime.app, parent__isnull=True)
        .select_related("query")
        .first()
    )
    if run is None or not run.is_merge:
        raise Http404("No such merge")
    return run


def row_of(parent: QueryRun, child_id: int) -> QueryRun:
    child = QueryRun.objects.filter(pk=child_id, parent=parent).first()
    if child is None:
        raise Http404("No such row")
    return child


def actor(runtime: PageRuntime) -> str:
    """Who stopped or retried, as the runs' errors name them."""
    user = runtime.request.user
    return user.get_username() if user.is_authenticated else "a visitor"


def stop(runtime: PageRuntime, parent: QueryRun) -> str:
    stopped = stop_merge(parent, actor(runtime))
    return f"Stopped: {stopped} email{'' if stopped == 1 else 's'} will not be sent."


def resume(runtime: PageRuntime, parent: QueryRun) -> str:
    queued = resume_merge(parent, actor(runtime))
    if not queued:
        return "Nothing left to send."
    return f"Sending the rest: {queued} email{'' if queued == 1 else 's'}."


def retry(runtime: PageRuntime, parent: QueryRun, child_id: int) -> str:
    child = row_of(parent, child_id)
    retry_row(child, actor(runtime))
    return f"Row {(child.row_index or 0) + 1} is sent again."


def end_message(progress: dict) -> tuple[str, str]:
    """The toast at a merge's end: its kind and text. Unknown rows are told apart: they
    may have arrived, and are never sent again."""
    total, sent, failed = progress["total"], progress["sent"], progress["failed"]
    unknown, stopped = progress["unknown"], progress["cancelled"]
    if failed:
        also = f", {unknown} unknown" if unknown else ""
        return "error", f"{failed} of {total} failed{also}"
    if unknown:
        return "error", f"{sent} sent, {unknown} unknown: check before sending again"
    if stopped:
        return "info", f"{sent} of {total} sent; {stopped} stopped"
    return "success", f"{sent} sent"


def waiting_for(parent: QueryRun, progress: dict):
    """The send time a merge still waits for (no row started yet), else None."""
    started = progress["sent"] + progress["failed"] + progress["unknown"] + progress["sending"]
    if progress["finished"] or started or parent.send_at is None:
        return None
    return parent.send_at if parent.send_at > timezone.now() else None


def state_label(progress: dict, send_at=None) -> str:
    if send_at is not None:
        return f"Scheduled for {describe(send_at)}"
    if not progress["finished"]:
        return "Sending"
    if progress["failed"] or progress["unknown"]:
        return "Done, with failures"
    if progress["cancelled"]:
        return "Stopped"
    return "Done"


def panel(
    runtime: PageRuntime, parent: QueryRun, *, pause: bool = False, live: bool | None = None
) -> SafeString:
    """The merge's panel as it is now; it asks for itself again while the merge goes
    on (at once when this request waited, after a pause when it could not), or with
    ``live`` after a button (rows may go again)."""
    progress = parent.progress()
    problems = (
        QueryRun.objects.filter(
            parent=parent, status__in=[RunStatus.FAILED, RunStatus.UNKNOWN]
        ).order_by("row_index", "pk")
    )[:FAILED_ROWS_SHOWN]
    done = progress["sent"] + progress["failed"] + progress["unknown"]
    waiting = progress["remaining"]
    scheduled = waiting_for(parent, progress)
    context = {
        "run": parent,
        "name": parent.query.name,
        "p": progress,
        "done": done,
        "rate": round(progress["rate"] or 0),
        "rows": [_problem(child) for child in problems],
        "more_rows": max(0, progress["failed"] + progress["unknown"] - len(problems)),
        "refresh_url": runtime.merge_endpoint("merge", parent.pk),
        "stop_url": runtime.merge_endpoint("merge_stop", parent.pk) if waiting else "",
        "resume_url": (
            runtime.merge_endpoint("merge_resume", parent.pk)
            if progress["cancelled"] and not waiting
            else ""
        ),
        "state": state_label(progress, scheduled),
        "live": not progress["finished"] if live is None else live,
        # A merge waiting for its send time is asked about every few seconds, not at once.
        "delay_ms": 5000 if scheduled else 500 if pause or live else 0,
    }
    for row in context["rows"]:
        if row["retryable"]:
            row["retry_url"] = runtime.merge_endpoint("merge_retry", parent.pk, row["id"])
    return render_to_string(f"{PARTIALS}#merge", context)


def _problem(child: QueryRun) -> dict:
    fields = child.fields if isinstance(child.fields, dict) else {}
    return {
        "id": child.pk,
        "number": (child.row_index or 0) + 1,
        "to": fields.get("to") or "",
        "status": child.status,
        "error": child.error,
        "field": child.error_field,
        # An unknown row may have been delivered: a person checks, Kiln never resends it.
        "retryable": child.status == RunStatus.FAILED,
    }


def shown_on_load(runtime: PageRuntime) -> list[QueryRun]:
    """This person's merges that the page shows when it loads: the last merge of each
    merge query, while it goes on, or for an hour after its end when rows failed or
    were stopped (their buttons are still of use)."""
    found = []
    since = timezone.now() - SHOWN_AFTER_END
    for name, doc in runtime.queries.items():
        if not is_merge_query(doc):
            continue
        row = runtime.query_row(name)
        if row is None:
            continue
        run = (
            QueryRun.objects.filter(
                runs_of(runtime.request.user, runtime.visitor), query=row, parent__isnull=True
            )
            .order_by("-created_at", "-id")
            .first()
        )
        if run is None or not run.is_merge:
            continue
        if not run.finished:
            found.append(run)
        elif run.finished_at and run.finished_at >= since:
            progress = run.progress()
            if progress["failed"] or progress["unknown"] or progress["cancelled"]:
                found.append(run)
    return found
