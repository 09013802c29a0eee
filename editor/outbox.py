"""The outbox pages: every run of a workspace, or of one app, with its status and
recipients; one run's message as it was sent; Resend, Cancel, and a CSV export.

Editors and admins see every run of the workspace; viewers only their own. Another
workspace's run is a 404. The list never reads a run's message bytes or files: it
reads the columns it shows (``LIST_COLUMNS``), backed by the (workspace | app,
created_at) indexes."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.fields.json import KT
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.dateparse import parse_datetime
from django.utils.http import content_disposition_header
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from builder.access import get_app_for_member
from builder.models import App
from core.invites import read_calendar
from core.mail import FRAME_IMAGE_BYTES, SANDBOX_HEADERS, ParsedMail
from datasources.models import Datasource
from editor.outbox_filters import STATUSES, OutboxFilters, read_filters
from queries.merge import rows_of
from queries.models import QueryRun, RunAttachment, RunStatus, runs_of
from queries.resend import ResendRefused, check_resendable, resend
from workspaces import audit
from workspaces.access import get_membership
from workspaces.audit import Action
from workspaces.models import Membership, Role

PAGE_SIZE = 50
#: The columns the list reads: never payload, fields, data or the files.
LIST_COLUMNS = (
    "id",
    "workspace_id",
    "app_id",
    "app__name",
    "app__slug",
    "query_name",
    "status",
    "subject",
    "mail_from",
    "mail_to",
    "mail_cc",
    "mail_bcc",
    "created_by_id",
    "created_by__username",
    "visitor",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
    "send_at",
    "error",
    "resent_from_id",
)
CSV_HEADER = (
    "id",
    "created_at",
    "status",
    "app",
    "query",
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "ran_by",
    "attempts",
    "started_at",
    "finished_at",
    "error",
    "message_id",
)
#: A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@dataclass
class Outbox:
    """Whose outbox a page shows: a workspace's, or one app's (``app``), and the runs
    the signed-in member may see in it."""

    membership: Membership
    app: App | None
    runs: QuerySet[QueryRun]

    @property
    def workspace(self):
        return self.membership.workspace

    @property
    def can_edit(self) -> bool:
        return self.membership.allows(Role.EDITOR)

    def list_url(self) -> str:
        if self.app is not None:
            return reverse("editor:app_outbox", args=[self.app.slug])
        return reverse("editor:outbox", args=[self.workspace.slug])

    def export_url(self) -> str:
        if self.app is not None:
            return reverse("editor:app_outbox_csv", args=[self.app.slug])
        return reverse("editor:outbox_csv", args=[self.workspace.slug])

    def sandbox_notes(self) -> list[tuple[str, str]]:
        """(datasource, note) for each datasource here in sandbox mode."""
        datasources = Datasource.objects.filter(workspace=self.workspace)
        if self.app is not None:
            datasources = datasources.filter(queries__app=self.app).distinct()
        notes = [(ds.name, getattr(ds, "sandbox_note", "")) for ds in datasources]
        return [(name, note) for name, note in notes if note]


def _visible(membership: Membership, user) -> QuerySet[QueryRun]:
    runs = QueryRun.objects.filter(workspace=membership.workspace)
    if not membership.allows(Role.EDITOR):
        runs = runs.filter(runs_of(user))
    return runs


def _workspace_outbox(request: HttpRequest, workspace: str) -> Outbox:
    membership = get_membership(request, workspace)
    return Outbox(membership, None, _visible(membership, request.user))


def _app_outbox(request: HttpRequest, app: str) -> Outbox:
    found = get_app_for_member(request, app)
    membership = get_membership(request, found.workspace.slug)
    return Outbox(membership, found, _visible(membership, request.user).filter(app=found))


def _filtered(outbox: Outbox, request: HttpRequest) -> tuple[QuerySet[QueryRun], OutboxFilters]:
    filters = read_filters(request.GET, with_app=outbox.app is None)
    runs = filters.apply(outbox.runs).select_related("app", "created_by")
    return runs.only(*LIST_COLUMNS), filters


# -- The list ----------------------------------------------------------------------------


@login_required
@require_GET
def workspace_outbox(request: HtmxHttpRequest, workspace: str) -> HttpResponse:
    return _list(request, _workspace_outbox(request, workspace))


@login_required
@require_GET
def app_outbox(request: HtmxHttpRequest, app: str) -> HttpResponse:
    return _list(request, _app_outbox(request, app))


def _list(request: HtmxHttpRequest, outbox: Outbox) -> HttpResponse:
    runs, filters = _filtered(outbox, request)
    page_obj = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    if outbox.app is not None:
        query_names = list(outbox.app.queries.values_list("name", flat=True))
        apps: list[App] = []
    else:
        query_names = []
        apps = list(outbox.workspace.apps.order_by("name").only("name", "slug"))
    context = {
        "outbox": outbox,
        "workspace": outbox.workspace,
        "app": outbox.app,
        "page_obj": page_obj,
        "filters": filters,
        "chosen": filters.chosen,
        "statuses": STATUSES,
        "query_names": query_names,
        "apps": apps,
        "query": query.urlencode(),
        "section": "outbox",
    }
    if request.htmx:
        # Only the results, problems included, swapped in place: answered 200, as htmx
        # swaps no 4xx here (base.html's htmx-config).
        response = render(request, "editor/outbox/_runs.html#results", context)
    else:
        # An app's outbox is a tab of the editor for editors; a viewer has no editor.
        in_editor = outbox.app is not None and outbox.can_edit
        template = "editor/outbox/app.html" if in_editor else "editor/outbox/workspace.html"
        context["sandbox_notes"] = outbox.sandbox_notes()
        response = render(request, template, context, status=400 if filters.problems else 200)
    patch_vary_headers(response, ["HX-Request"])
    return response


# -- The CSV export ----------------------------------------------------------------------


@login_required
@require_GET
def workspace_outbox_csv(request: HttpRequest, workspace: str) -> HttpResponseBase:
    return _export(request, _workspace_outbox(request, workspace))


@login_required
@require_GET
def app_outbox_csv(request: HttpRequest, app: str) -> HttpResponseBase:
    return _export(request, _app_outbox(request, app))


class _Echo:
    """A file whose write hands the line back: csv.writer's lines, one at a time."""

    def write(self, value: str) -> str:
        return value


def safe_cell(value) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text: a leading ' before a
    formula's first character."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_row(run: QueryRun) -> list[str]:
    def when(moment):
        return moment.isoformat() if moment else ""

    cells = (
        run.pk,
        when(run.created_at),
        run.status,
        run.app.name if run.app is not None else "",
        run.query_name,
        run.mail_from,
        run.mail_to,
        run.mail_cc,
        run.mail_bcc,
        run.subject,
        run.ran_by,
        run.attempts,
        when(run.started_at),
        when(run.finished_at),
        run.error,
        run.message_id or "",  # type: ignore[attr-defined]
    )
    return [safe_cell(cell) for cell in cells]


def _csv_lines(runs: Iterable[QueryRun]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for run in runs:
        yield writer.writerow(_csv_row(run))


def _export(request: HttpRequest, outbox: Outbox) -> HttpResponseBase:
    runs, filters = _filtered(outbox, request)
    if filters.problems:
        # An export is never wider than what was asked for.
        return HttpResponse("\n".join(filters.problems), status=400, content_type="text/plain")
    runs = runs.annotate(message_id=KT("payload_meta__message_id"))
    name = outbox.app.slug if outbox.app is not None else outbox.workspace.slug
    response = StreamingHttpResponse(
        _csv_lines(runs.iterator(chunk_size=2000)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=f"outbox-{name}.csv"
    )
    return response


# -- One run -----------------------------------------------------------------------------


def _run(request: HttpRequest, workspace: str, run_id: int) -> tuple[Outbox, QueryRun]:
    outbox = _workspace_outbox(request, workspace)
    run = get_object_or_404(
        outbox.runs.select_related("app", "created_by", "datasource", "resent_from"), pk=run_id
    )
    return outbox, run


@login_required
@require_GET
def run_detail(request: HttpRequest, workspace: str, run: int) -> HttpResponse:
    outbox, found = _run(request, workspace, run)
    return _detail(request, outbox, found)


def _detail(
    request: HttpRequest, outbox: Outbox, run: QueryRun, *, error: str = "", status: int = 200
) -> HttpResponse:
    details = run.details if isinstance(run.details, dict) else {}
    meta = run.payload_meta if isinstance(run.payload_meta, dict) else {}
    mail = _stored_mail(run)
    files = _run_files(run, mail)
    html_body = mail.html_body if mail is not None else None
    context = {
        "outbox": outbox,
        "workspace": outbox.workspace,
        "run": run,
        "mail": mail,
        "has_html": html_body is not None,
        "text_body": mail.text_body if mail is not None else None,
        "attachments": files.attachments,
        "inline_images": files.inline_images,
        "invite": _invite(run, mail),
        "resends": run.resends.only("id", "status", "created_at"),
        "message_id": details.get("message_id") or meta.get("message_id") or "",
        "server_reply": details.get("server_reply", ""),
        # Where it went is recorded when it is sent (the mode at send time counts);
        # what was planned when it was stored says only where it would have gone.
        "sandbox": details.get("sandbox") if run.status == RunStatus.SENT else None,
        "sandbox_planned": meta.get("sandbox") if run.status != RunStatus.SENT else None,
        "can_resend": outbox.can_edit and _resendable(run),
        "merge": run.progress() if run.is_merge else None,
        "merge_rows": rows_of(run, limit=MERGE_ROWS_SHOWN) if run.is_merge else [],
        "can_cancel": run.status in (RunStatus.QUEUED, RunStatus.SCHEDULED)
        and _may_cancel(outbox, run, request.user),
        "error": error,
        "failures": _failures(run),
    }
    return render(request, "editor/outbox/detail.html", context, status=status)


def _failures(run: QueryRun) -> list[dict]:
    """Its failed attempts, each with ``when``: the stored ISO time as a datetime, so
    the page writes it as it writes its other times (with the time zone)."""
    failures = run.failures if isinstance(run.failures, list) else []
    shown = []
    for failure in failures:
        if isinstance(failure, dict):
            at = failure.get("at")
            shown.append({**failure, "when": _moment(at)})
    return shown


def _moment(value) -> datetime | None:
    """A stored ISO time as a datetime; None for anything else (shown as stored)."""
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


#: How many of a merge's rows its page lists (the outbox's search finds the others).
MERGE_ROWS_SHOWN = 100


def _resendable(run: QueryRun) -> bool:
    """Whether Resend is offered: the same checks a resend makes (its state, a merge's
    parent, a row that never had a message), so the page never offers a dead end."""
    try:
        check_resendable(run)
    except ResendRefused:
        return False
    return True


def _stored_mail(run: QueryRun, bodies: dict[str, bytes] | None = None) -> ParsedMail | None:
    """The email a run stored to send, parsed, with ``bodies`` (placeholder -> bytes) in
    place of the placeholders that stand for its files; None for a run that stored none
    (another plugin's, or one stored before messages were): its page shows its fields
    instead."""
    meta = run.payload_meta if isinstance(run.payload_meta, dict) else {}
    if run.payload is None or not meta.get("message_id"):
        return None
    return ParsedMail(bytes(run.payload), bodies)


@dataclass
class InlineFile:
    """A run's file that its HTML body shows in place, by ``cid:``."""

    file: RunAttachment
    cid: str
    #: What stands for its body in the stored message.
    placeholder: str


@dataclass
class MessageFile:
    """An attachment the stored message holds itself (an invite's invite.ics), listed
    as a stored file is."""

    name: str
    content_type: str
    size: int


@dataclass
class RunFiles:
    """A run's files as its page lists them: the inline images apart from the
    attachments (the stored files, then those the message holds itself)."""

    inline_images: list[InlineFile]
    attachments: list[RunAttachment | MessageFile]


def _run_files(run: QueryRun, mail: ParsedMail | None) -> RunFiles:
    """The run's stored files (a merge row's are its merge's), in the order of the
    stored message's placeholders: inline images first, then attachments."""
    rows = list(
        RunAttachment.objects.filter(run_id=run.parent_id or run.pk).only(
            "position", "name", "content_type", "size"
        )
    )
    meta = run.payload_meta if isinstance(run.payload_meta, dict) else {}
    stored = [str(p) for p in meta.get("placeholders") or []]
    placeholders = stored[: len(rows)]
    cids = _inline_cids(mail, placeholders) if mail is not None else {}
    return RunFiles(
        inline_images=[
            InlineFile(rows[i], cids[placeholder], placeholder)
            for i, placeholder in enumerate(placeholders)
            if placeholder in cids
        ],
        attachments=[
            row
            for i, row in enumerate(rows)
            if i >= len(placeholders) or placeholders[i] not in cids
        ]
        + _own_files(mail, stored),
    )


def _own_files(mail: ParsedMail | None, placeholders: list[str]) -> list[MessageFile]:
    """The attachments made with the message rather than stored as the run's files: the
    page lists what a recipient gets, invite.ics included."""
    if mail is None:
        return []
    return [
        MessageFile(info["filename"], info["content_type"], info["size"])
        for info in mail.own_attachments(placeholders)
    ]


def _inline_cids(mail: ParsedMail, placeholders: list[str]) -> dict[str, str]:
    """The Content-ID, by placeholder, of each file the HTML body shows by cid:."""
    shown = {image["cid"] for image in mail.inline_images}
    found = {}
    for part in mail.message.walk():
        payload = part.get_payload()
        cid = str(part.get("Content-ID") or "").strip().strip("<>")
        if isinstance(payload, str) and payload.strip() in placeholders and cid in shown:
            found[payload.strip()] = cid
    return found


def _image_bodies(files: RunFiles) -> dict[str, bytes]:
    """The bytes of the inline images a frame may show (each up to FRAME_IMAGE_BYTES),
    by their placeholders; never an attachment's, which the frame does not show."""
    by_pk = {image.file.pk: image.placeholder for image in files.inline_images}
    small = RunAttachment.objects.filter(pk__in=by_pk, size__lte=FRAME_IMAGE_BYTES)
    return {by_pk[pk]: bytes(content) for pk, content in small.values_list("pk", "content")}


def _invite(run: QueryRun, mail: ParsedMail | None) -> dict | None:
    """The invite the message carries, shown in the time zone it was asked in."""
    calendar = mail.calendar if mail is not None else None
    if calendar is None:
        return None
    fields = run.fields if isinstance(run.fields, dict) else {}
    zone = fields.get("invite_timezone")
    return read_calendar(calendar, zone if isinstance(zone, str) and zone else settings.TIME_ZONE)


@login_required
@require_GET
@xframe_options_sameorigin
def run_html(request: HttpRequest, workspace: str, run: int) -> HttpResponse:
    """The HTML body of a run's message, for the detail page's sandboxed iframe only."""
    _, found = _run(request, workspace, run)
    mail = _stored_mail(found)
    if mail is not None:
        # The images in place: the stored message has placeholders for their bodies.
        mail = _stored_mail(found, _image_bodies(_run_files(found, mail)))
    body = mail.html_with_images if mail is not None else None
    if body is None:
        raise Http404("This run's message has no HTML part")
    return HttpResponse(body, content_type="text/html; charset=utf-8", headers=SANDBOX_HEADERS)


@login_required
@require_POST
def run_resend(request: HttpRequest, workspace: str, run: int) -> HttpResponse:
    outbox, found = _run(request, workspace, run)
    if not outbox.can_edit:
        raise PermissionDenied("Sending a run again needs the editor role in this workspace")
    try:
        new = resend(found, request.user, request=request)
    except ResendRefused as exc:
        return _detail(request, outbox, found, error=exc.message, status=exc.status)
    messages.success(request, f"Run {found.pk} is being sent again as run {new.pk}.")
    return redirect("editor:outbox_run", outbox.workspace.slug, new.pk)


def _may_cancel(outbox: Outbox, run: QueryRun, user) -> bool:
    """As the run API: the member who started it, or an editor or admin."""
    return outbox.can_edit or run.created_by_id == user.pk


@login_required
@require_POST
def run_cancel(request: HttpRequest, workspace: str, run: int) -> HttpResponse:
    outbox, found = _run(request, workspace, run)
    if not _may_cancel(outbox, found, request.user):
        raise PermissionDenied("Only who started a run, or an editor, may cancel it")
    with transaction.atomic():
        cancelled = found.cancel(by=request.user.get_username())
        if cancelled:
            audit.record(
                outbox.workspace,
                Action.CANCELLED,
                "run",
                found.label,
                request=request,
                detail={"run": found.pk},
            )
    if not cancelled:
        error = (
            f"This run is {found.get_status_display().lower()}: only a queued or scheduled "
            "run can be cancelled."
        )
        return _detail(request, outbox, found, error=error, status=409)
    messages.success(request, f"Run {found.pk} is cancelled; it will not be sent.")
    return redirect("editor:outbox_run", outbox.workspace.slug, found.pk)
