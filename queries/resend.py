"""Sending a run again from the outbox: a new run that copies the old one's stored
message, linked to it by ``resent_from``.

Only a failed or unknown run is sent again, and only by a person's click: an unknown
run may have arrived, so sending it again is a decision, never the outbox's own. The
new run keeps the stored message bytes as they are, Message-ID included, so that a
mail client that got both copies can tell they are the same message
(docs/decisions.md)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest

from queries.errors import RunRequestError
from queries.models import SUMMARY_FIELDS, QueryRun, RunAttachment, RunStatus
from queries.tasks import enqueue
from workspaces import audit
from workspaces.audit import Action

log = logging.getLogger(__name__)

#: The states a person may send again from: the outbox gave up, or cannot know.
RESENDABLE = (RunStatus.FAILED, RunStatus.UNKNOWN)


class ResendRefused(RunRequestError):
    """The run cannot be sent again (its state, or its datasource is gone): answered
    with HTTP 409, nothing stored."""

    status = 409


def check_resendable(run: QueryRun) -> None:
    """Raises ``ResendRefused`` with the reason when ``run`` cannot be sent again."""
    if run.status not in RESENDABLE:
        raise ResendRefused(
            "status",
            f"This run is {run.get_status_display().lower()}; only a failed or unknown "
            "run can be sent again.",
        )
    if run.is_merge:
        raise ResendRefused(
            "run",
            "This is a mail merge: it is sent again row by row (Retry on a failed row, or "
            "Send the rest on the merge's page).",
        )
    if run.parent_id is not None and run.payload is None and not run.fields:
        raise ResendRefused(
            "fields",
            f"This row of a mail merge never had a message ({run.error or 'its data was wrong'}); "
            "fix the row's data and start the merge again.",
        )
    if run.datasource_id is None:
        raise ResendRefused(
            "datasource",
            "The datasource this run went through was deleted; it cannot be sent again.",
        )


def resend(run: QueryRun, user, request: HttpRequest | None = None) -> QueryRun:
    """A new queued run with ``run``'s stored message, envelope, fields, action,
    datasource, timeout and attachments, by ``user``; enqueued once the transaction
    commits, audited. Raises ``ResendRefused`` when ``run`` cannot be sent again."""
    check_resendable(run)
    with transaction.atomic():
        # Read again: its state may have changed since the page was drawn. Its message
        # bytes are read here, once; the outbox list never reads them.
        source = QueryRun.objects.get(pk=run.pk)
        check_resendable(source)
        new = QueryRun.objects.create(
            workspace_id=source.workspace_id,
            app_id=source.app_id,
            query_id=source.query_id,
            query_name=source.query_name,
            datasource_id=source.datasource_id,
            action=source.action,
            timeout_seconds=source.timeout_seconds,
            created_by=user if getattr(user, "pk", None) else None,
            fields=source.fields,
            payload=source.payload,
            payload_meta=source.payload_meta,
            file_count=source.file_count,
            max_attempts=settings.KILN_RUN_MAX_ATTEMPTS,
            **{column: getattr(source, column) for column in SUMMARY_FIELDS},
            resent_from=source,
        )
        # A merge's rows send the files stored once with the merge.
        _copy_attachments(source.parent_id or source.pk, new.pk)
        audit.record(
            source.workspace,
            Action.RESENT,
            "run",
            f"{new.label}, resending run {source.pk}",
            request=request,
            actor=new.created_by,
            detail={"run": new.pk, "resent_from": source.pk},
        )
        transaction.on_commit(lambda: enqueue(new.pk))
    log.info("run %s resends run %s", new.pk, source.pk)
    return new


def _copy_attachments(source_id: int, target_id: int) -> None:
    """The source run's files copied to the target run by the database, in one
    INSERT ... SELECT: their bytes never pass through this process."""
    quote = connection.ops.quote_name
    fields = {field.name: field.column for field in RunAttachment._meta.concrete_fields}
    table = quote(RunAttachment._meta.db_table)
    columns = ", ".join(
        quote(fields[name]) for name in ("position", "content", "name", "content_type", "size")
    )
    run_column = quote(fields["run"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({run_column}, {columns}) "
            f"SELECT %s, {columns} FROM {table} WHERE {run_column} = %s",
            [target_id, source_id],
        )
