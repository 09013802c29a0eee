"""Mail merge: a query with ``for_each`` runs once per row of a bound list (a Table's
data, a query's data, an uploaded CSV), with ``row`` and ``index`` in scope.

A merge is a parent run (it sends nothing; ``merge_total`` is its number of rows) and
one child run per row, stored together in one transaction: each child is an ordinary
run, claimed and sent by the outbox, so each row is sent at most once. A row whose
bindings or checks fail is stored failed, with its error, and never sent; the others
go on. The parent is ``sending`` while rows wait, then settles from them
(queries.models.settle_merge). docs/merge.md is the user's guide.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from bindings import BindingError, evaluate, referenced_names
from bindings.namespace import MERGE_NAMES
from builder.models import Query
from builder.schema import QueryDocument
from datasources.errors import PluginError
from datasources.models import Datasource
from datasources.plugins import Plugin
from datasources.plugins.base import Prepared, jsonable
from queries.context import binding_context, check_inputs
from queries.errors import RunLimitError, RunRequestError
from queries.execution import (
    check_run_limits,
    evaluate_action_fields,
    prepare,
    prepared_values,
    record_ran,
    run_target,
    run_values,
    send_time,
    store_files,
)
from queries.models import WAITING, QueryRun, RunStatus, settle_merge
from queries.tasks import start_merge_walk
from workspaces import audit
from workspaces.audit import Action
from workspaces.files import FileContent

log = logging.getLogger(__name__)

#: Rows stored per INSERT: a 10,000-row merge is 20 statements.
BATCH = 500
#: The delimiters a CSV file may use, guessed from its header line.
DELIMITERS = (",", ";", "\t")


@dataclass
class RowPreview:
    """One row as it would be sent: its evaluated ``fields`` (and the plugin's
    ``preview`` of the message, when it has one), or the ``error`` (naming
    ``error_field``) that would fail it."""

    index: int
    row: Any
    fields: dict | None = None
    preview: dict | None = None
    error: str = ""
    error_field: str = ""


@dataclass
class MergePreview:
    """How many emails a merge would send (``count``, its rows) and its first rows;
    ``limit_error``: why starting it now would be refused by a run limit, if it would."""

    count: int
    rows: list[RowPreview] = field(default_factory=list)
    limit_error: str = ""


@dataclass
class _Merge:
    """A merge ready to build its rows: what it runs through, the context every row
    shares, and the rows."""

    query: Query
    target: QueryDocument
    datasource: Datasource
    plugin: Plugin
    context: dict
    rows: list


# ---------------------------------------------------------------------- the rows


def _too_many() -> RunRequestError:
    limit = settings.KILN_MERGE_MAX_ROWS
    return RunRequestError(
        "for_each",
        f"for_each: more than {limit} rows; a merge sends at most {limit} "
        "(limit KILN_MERGE_MAX_ROWS). Split the list.",
    )


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (None)"
    if isinstance(value, dict):
        return "an object (a dict); use a list such as << table1.data >>"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return f"the text “{shown}”"
    if isinstance(value, bool):
        return f"the value {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return f"a value of type {type(value).__name__}"


def merge_rows(value: Any) -> list:
    """The rows ``for_each`` evaluated to: a list (of objects or single values), or an
    uploaded file (``<< files1.files[0] >>``, or a list of exactly one) read as CSV.
    RunRequestError naming for_each for anything else, an empty list, or too many."""
    if isinstance(value, list | tuple) and len(value) == 1 and isinstance(value[0], FileContent):
        value = value[0]
    if isinstance(value, FileContent):
        return csv_rows(value)
    if not isinstance(value, list | tuple):
        raise RunRequestError(
            "for_each", f"for_each must be a list of rows or a CSV file, not {_describe(value)}."
        )
    if any(isinstance(item, FileContent) for item in value):
        raise RunRequestError(
            "for_each", f"for_each: {len(value)} files chosen; a merge reads one CSV file."
        )
    if not value:
        raise RunRequestError("for_each", "for_each is an empty list: there is no row to send.")
    if len(value) > settings.KILN_MERGE_MAX_ROWS:
        raise _too_many()
    return list(value)


def _delimiter(header: str) -> str:
    """The delimiter a CSV file uses: the one of , ; and tab its header line has most
    of (a comma when it has none: a file of one column)."""
    counts = {delimiter: header.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def csv_rows(file: FileContent) -> list[dict[str, str]]:
    """The rows of an uploaded CSV file as objects keyed by its header row: UTF-8 (a
    byte-order mark is skipped), delimited by , ; or tab, blank lines skipped. Values
    are text, as written. RunRequestError naming for_each for a file that is not such."""
    where = f"for_each: the file “{file.name}”"
    try:
        text = file.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RunRequestError(
            "for_each", f"{where} is not UTF-8 text (byte {exc.start + 1}); save it as CSV UTF-8."
        ) from None
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), None)
    if header_line is None:
        raise RunRequestError("for_each", f"{where} is empty.")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(header_line))
    try:
        header: list[str] | None = None
        rows: list[dict[str, str]] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = _header(cells, where)
                continue
            if len(cells) > len(header):
                raise RunRequestError(
                    "for_each",
                    f"{where}, line {reader.line_num}: {len(cells)} values, but the header "
                    f"has {len(header)} columns.",
                )
            if len(rows) >= settings.KILN_MERGE_MAX_ROWS:
                raise _too_many()
            cells += [""] * (len(header) - len(cells))
            rows.append(dict(zip(header, cells, strict=True)))
    except csv.Error as exc:
        raise RunRequestError(
            "for_each", f"{where}, line {reader.line_num}: not valid CSV ({exc})."
        ) from None
    if not rows:
        raise RunRequestError("for_each", f"{where} has a header row but no rows to send.")
    return rows


def _header(cells: list[str], where: str) -> list[str]:
    header = [cell.strip() for cell in cells]
    if not all(header):
        raise RunRequestError(
            "for_each", f"{where}: every column of the header row (the first line) needs a name."
        )
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise RunRequestError(
            "for_each", f"{where}: the header names {', '.join(twice)} more than once."
        )
    return header


# ---------------------------------------------------------------------- building rows


def _open(
    query: Query,
    user,
    inputs: dict | None,
    *,
    url: dict | None,
    page,
    published: QueryDocument | None,
    visitor: str,
) -> _Merge:
    """The merge's target, shared context and rows (``for_each`` evaluated in it)."""
    inputs = check_inputs(inputs)
    target, datasource = run_target(query, published)
    if not target.for_each.strip():
        raise RunRequestError("for_each", f"{query.name} has no for_each: it is not a merge.")
    reads = referenced_names([target.fields, target.for_each, target.send_at], skip_errors=True)
    context = binding_context(
        query.app,
        user,
        inputs,
        url=url,
        page=page,
        visitor=visitor,
        reads=reads.difference(MERGE_NAMES),
    )
    try:
        value = evaluate("for_each", target.for_each, context)
    except BindingError as exc:
        raise RunRequestError("for_each", str(exc)) from None
    rows = merge_rows(value)
    return _Merge(query, target, datasource, datasource.plugin, context, rows)


def _row_fields(merge: _Merge, index: int, row: Any) -> dict:
    """The query's fields evaluated for one row; RunRequestError naming the field."""
    context = {**merge.context, "row": row, "index": index}
    return evaluate_action_fields(merge.plugin, merge.target.action, merge.target.fields, context)


def _build(merge: _Merge, index: int, row: Any) -> Prepared:
    evaluated = _row_fields(merge, index, row)
    return prepare(merge.plugin, merge.target.action, evaluated, merge.query, merge.datasource)


def _digest(files: list) -> tuple:
    return tuple((f.name, f.content_type, hashlib.sha256(f.data).hexdigest()) for f in files)


class _SharedFiles:
    """A merge's attachments, stored once with the parent: every row must send the
    same files (by name, type and content), else that row fails. 10,000 rows with a
    1 MB file store 1 MB, not 10 GB."""

    def __init__(self) -> None:
        self.files: list | None = None
        self.digest: tuple = ()
        self.fields: list[str] = []

    def check(self, files: list, fields: list[str]) -> None:
        """Refuse ``files`` (from ``fields``, the field of each, as ``Prepared.
        file_fields``) unless they are the first row's; the error names the field whose
        files differ (Inline images, say, when only the images do)."""
        if self.files is None:
            # Kept (so their ids stay theirs) and hashed once.
            self.files, self.digest, self.fields = files, _digest(files), fields
            return
        same_objects = len(files) == len(self.files) and all(
            a.data is b.data and (a.name, a.content_type) == (b.name, b.content_type)
            for a, b in zip(files, self.files, strict=True)
        )
        if not same_objects and _digest(files) != self.digest:
            field = self._differing_field(_digest(files), fields)
            raise RunRequestError(
                field,
                f"{field}: every row of a merge sends the same files; this row's differ "
                "from the first row's.",
            )

    def _differing_field(self, digest: tuple, fields: list[str]) -> str:
        """The first field whose files differ from the first row's ones."""
        mine, first = _by_field(digest, fields), _by_field(self.digest, self.fields)
        for name in dict.fromkeys([*first, *mine]):
            if mine.get(name) != first.get(name):
                return name
        return "attachments"


def _by_field(digest: tuple, fields: list[str]) -> dict[str, list]:
    """Each file's digest under the field it came from (files with no field named are
    attachments)."""
    grouped: dict[str, list] = {}
    for index, item in enumerate(digest):
        name = fields[index] if index < len(fields) else "attachments"
        grouped.setdefault(name, []).append(item)
    return grouped


def _spacing(count: int, start: datetime) -> list[datetime]:
    """When each of ``count`` rows is due: all now, or one every 60/rate seconds with
    KILN_MERGE_RATE_PER_MINUTE (the rows wait, scheduled; no worker sleeps)."""
    rate = settings.KILN_MERGE_RATE_PER_MINUTE
    if rate <= 0:
        return [start] * count
    step = 60.0 / rate
    return [start + timedelta(seconds=i * step) for i in range(count)]


def _child(merge: _Merge, base: dict, index: int, row: Any, shared: _SharedFiles) -> QueryRun:
    """One row's run, unsaved and with no parent yet: queued with its message, or
    failed with its error."""
    values = {**base, "row_index": index}
    try:
        prepared = _build(merge, index, row)
        shared.check(prepared.files, prepared.file_fields)
    except RunRequestError as exc:
        # The row itself is kept for display: a failed row has no fields to show.
        return QueryRun(
            **values,
            status=RunStatus.FAILED,
            error=f"Row {index + 1}: {exc.message}",
            error_field=exc.field or "",
            details={"row": jsonable(row)},
            finished_at=timezone.now(),
        )
    return QueryRun(**values, **prepared_values(prepared), status=RunStatus.QUEUED)


def _schedule(children: list[QueryRun], start: datetime, timeout: int) -> None:
    """Due times of the rows to send (spaced by the merge rate); a row's timeout counts
    from when it is due, not from when the merge was started."""
    waiting = [child for child in children if child.status == RunStatus.QUEUED]
    for child, due in zip(waiting, _spacing(len(waiting), start), strict=True):
        delay = int((due - start).total_seconds())
        child.next_attempt_at = due
        child.timeout_seconds = timeout + delay
        if delay > 0:
            child.status = RunStatus.SCHEDULED


# ---------------------------------------------------------------------- the interface


def preview_merge(
    query: Query,
    user,
    inputs: dict | None,
    *,
    url: dict | None = None,
    page=None,
    published: QueryDocument | None = None,
    visitor: str = "",
    limit: int = 3,
) -> MergePreview:
    """How many emails the merge would send and its first ``limit`` rows' messages (or
    their errors). Nothing stored, nothing sent. RunRequestError (naming for_each, or
    an input) when the merge cannot start at all."""
    merge = _open(query, user, inputs, url=url, page=page, published=published, visitor=visitor)
    shown = []
    shared = _SharedFiles()
    for index, row in enumerate(merge.rows[: max(limit, 0)]):
        shown.append(_preview_row(merge, index, row, shared))
    found = MergePreview(count=len(merge.rows), rows=shown)
    try:
        check_run_limits(query, user, visitor, rows=found.count)
    except RunLimitError as exc:
        found.limit_error = exc.message
    return found


def _preview_row(merge: _Merge, index: int, row: Any, shared: _SharedFiles) -> RowPreview:
    found = RowPreview(index=index, row=jsonable(row))
    try:
        evaluated = _row_fields(merge, index, row)
        prepared = prepare(
            merge.plugin, merge.target.action, evaluated, merge.query, merge.datasource
        )
        shared.check(prepared.files, prepared.file_fields)
    except RunRequestError as exc:
        found.error, found.error_field = exc.message, exc.field or ""
        return found
    found.fields = jsonable(evaluated)
    if merge.plugin.has_preview:
        try:
            found.preview = merge.plugin.preview_run(merge.target.action, evaluated)
        except PluginError as exc:
            found.error, found.error_field = exc.message, exc.field or ""
    return found


def start_merge(
    query: Query,
    user,
    inputs: dict | None,
    *,
    url: dict | None = None,
    page=None,
    published: QueryDocument | None = None,
    request: HttpRequest | None = None,
    visitor: str = "",
    send_at: str = "",
) -> QueryRun:
    """Store the merge (its parent and one run per row) and start sending once the
    transaction commits; the parent returned. RunRequestError (nothing stored) when
    for_each or an input is wrong, RunLimitError when the merge would pass a limit.
    With a send time (``send_at``, else the query's), its rows wait scheduled until
    then, like a single scheduled send (queries.schedule)."""
    merge = _open(query, user, inputs, url=url, page=page, published=published, visitor=visitor)
    total = len(merge.rows)
    check_run_limits(query, user, visitor, rows=total)
    base = run_values(query, merge.target, merge.datasource, user, visitor)
    shared = _SharedFiles()
    # Built before the transaction: no lock is held while each row's message is built.
    children = [_child(merge, base, index, row, shared) for index, row in enumerate(merge.rows)]
    now = timezone.now()
    due = send_time(send_at or merge.target.send_at, merge.context)
    _schedule(children, due or now, merge.target.timeout_seconds)
    if due:
        for child in children:
            if child.status == RunStatus.QUEUED:
                child.status = RunStatus.SCHEDULED
            if child.status == RunStatus.SCHEDULED:
                child.send_at = due
    with transaction.atomic():
        parent = QueryRun.objects.create(
            **base,
            status=RunStatus.SENDING,
            started_at=now,
            merge_total=total,
            # When its rows are due (a scheduled merge): the page and the outbox say so.
            send_at=due,
            details={"for_each": merge.target.for_each},
        )
        for child in children:
            child.parent = parent
        QueryRun.objects.bulk_create(children, batch_size=BATCH)
        if shared.files:
            store_files(parent, shared.files)
            QueryRun.objects.filter(pk=parent.pk).update(file_count=len(shared.files))
        record_ran(query, user, request, {"run": parent.pk, "rows": total})
        settle_merge(parent.pk)  # every row may have failed already
        transaction.on_commit(lambda: start_merge_walk(parent.pk))
    log.info("merge %s of query %s created: %s rows", parent.pk, query.pk, total)
    parent.refresh_from_db()
    return parent


def stop_merge(parent: QueryRun, by: str) -> int:
    """Cancel the merge's rows no worker has taken yet, in one conditional UPDATE (the
    claim takes the same states, so each row is either sent or cancelled); rows being
    sent finish. How many were cancelled."""
    _require_merge(parent)
    now = timezone.now()
    stopped = QueryRun.objects.filter(parent_id=parent.pk, status__in=WAITING).update(
        status=RunStatus.CANCELLED, error=f"Stopped by {by}.", finished_at=now
    )
    settle_merge(parent.pk)
    parent.refresh_from_db()
    log.info("merge %s stopped by %s: %s rows cancelled", parent.pk, by, stopped)
    return stopped


def resume_merge(parent: QueryRun, by: str) -> int:
    """Queue again the rows a stop cancelled, and send them: only cancelled rows (never
    claimed, so never sent), never a sent, sending, failed or unknown one. How many."""
    _require_merge(parent)
    now = timezone.now()
    with transaction.atomic():
        # The lock settle_merge takes: it cannot finish the parent in between.
        QueryRun.objects.select_for_update().filter(pk=parent.pk).first()
        rows = QueryRun.objects.filter(parent_id=parent.pk, status=RunStatus.CANCELLED)
        ids = list(rows.order_by("row_index").values_list("pk", flat=True))
        # A merge with a send time that has not come yet waits for it again.
        send_at = rows.exclude(send_at=None).values_list("send_at", flat=True).first()
        if ids:
            _requeue(parent, ids, now, start=max(now, send_at) if send_at else now)
            transaction.on_commit(lambda: start_merge_walk(parent.pk))
    parent.refresh_from_db()
    log.info("merge %s resumed by %s: %s rows queued again", parent.pk, by, len(ids))
    return len(ids)


def _requeue(parent: QueryRun, ids: list[int], now: datetime, start: datetime) -> None:
    """Rows queued again from ``start`` (now, or a scheduled merge's send time still
    ahead; spaced by the merge rate), their timeout counted from then, and the parent
    sending again. Inside the caller's transaction."""
    elapsed = int((start - parent.created_at).total_seconds()) + 1
    QueryRun.objects.filter(pk__in=ids).update(
        status=RunStatus.QUEUED if start <= now else RunStatus.SCHEDULED,
        error="",
        error_field="",
        attempts=0,
        next_attempt_at=start,
        enqueued_at=None,
        started_at=None,
        finished_at=None,
        timeout_seconds=parent.timeout_seconds + elapsed,
    )
    due = _spacing(len(ids), start)
    for run_id, at in zip(ids, due, strict=True):
        if at > start:
            delay = int((at - start).total_seconds())
            QueryRun.objects.filter(pk=run_id).update(
                status=RunStatus.SCHEDULED,
                next_attempt_at=at,
                timeout_seconds=F("timeout_seconds") + delay,
            )
    QueryRun.objects.filter(pk=parent.pk).update(
        status=RunStatus.SENDING, error="", data=None, finished_at=None
    )


def retry_row(child: QueryRun, by: str) -> QueryRun:
    """Send a failed row again: the same run queued again (attempts and error reset,
    its failures kept as history). Only a failed row that the outbox tried (a row whose
    bindings failed has no message: fix the data and start a new merge). RunRequestError
    naming status for any other row: a sent or unknown row is never sent again."""
    if child.parent_id is None:
        raise RunRequestError("run", "Only a row of a mail merge can be retried this way.")
    number = (child.row_index or 0) + 1
    if child.status != RunStatus.FAILED:
        raise RunRequestError(
            "status", f"Row {number} is {child.status}; only a failed row can be sent again."
        )
    if child.payload is None and not child.fields:
        raise RunRequestError(
            "status",
            f"Row {number} failed before it was built ({child.error}); "
            "fix its data and start a new merge.",
        )
    parent = QueryRun.objects.get(pk=child.parent_id)
    now = timezone.now()
    with transaction.atomic():
        QueryRun.objects.select_for_update().filter(pk=parent.pk).first()
        reopened = QueryRun.objects.filter(pk=child.pk, status=RunStatus.FAILED).update(
            status=RunStatus.QUEUED,
            error="",
            error_field="",
            attempts=0,
            next_attempt_at=now,
            enqueued_at=None,
            started_at=None,
            finished_at=None,
            timeout_seconds=parent.timeout_seconds
            + int((now - child.created_at).total_seconds())
            + 1,
        )
        if reopened:
            QueryRun.objects.filter(pk=parent.pk).update(
                status=RunStatus.SENDING, error="", data=None, finished_at=None
            )
            transaction.on_commit(lambda: start_merge_walk(parent.pk))
    child.refresh_from_db()
    if not reopened:
        raise RunRequestError("status", f"The row has {child.status} meanwhile; not sent again.")
    log.info("row %s of merge %s retried by %s", child.row_index, parent.pk, by)
    return child


def _require_merge(run: QueryRun) -> None:
    if not run.is_merge:
        raise RunRequestError("run", f"Run {run.pk} is not a mail merge.")


def rows_of(parent: QueryRun, status: str = "", offset: int = 0, limit: int = 50) -> list[QueryRun]:
    """A page of a merge's rows in row order, of one status if given (the failed rows
    with their errors, say)."""
    rows = QueryRun.objects.filter(parent_id=parent.pk).defer("payload")
    if status:
        rows = rows.filter(status=status)
    return list(rows.order_by("row_index")[offset : offset + limit])


def row_api(row: QueryRun, plugin: Plugin | None) -> dict:
    """A merge's row as the API and pages show it: the run, the plugin's summary of
    its fields (to, subject), and the row's data when its fields failed to build."""
    summary = plugin.run_summary(row.action, row.fields) if plugin is not None else {}
    return {**row.as_api(), "summary": summary, "row": row.details.get("row")}


def audit_merge(parent: QueryRun, what: str, request: HttpRequest | None, count: int) -> None:
    """One audit entry for a stop, resume or retry of a merge."""
    action = Action.CANCELLED if what == "stopped" else Action.RAN
    audit.record(
        parent.workspace,
        action,
        "run",
        f"merge {parent.pk} of {parent.query.name}",
        request=request,
        detail={"run": parent.pk, what: count},
    )
