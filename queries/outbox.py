"""Executing runs: claim a due run (queries.claims: queued -> sending in one
conditional UPDATE, so a redelivered task never sends twice), send it through its
datasource's plugin, record the outcome, and schedule a retry for a transient failure.
Free of Celery: the tasks in queries.tasks call it, in a worker or eagerly in the web
process."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.db import connection
from django.db.models import BinaryField, Func, Value
from django.utils import timezone

from datasources.errors import DeliveryUnknown, PluginError
from datasources.plugins.base import UNEXPECTED
from queries.claims import claim_and_read, record
from queries.models import QueryRun, RunAttachment, RunStatus, settle_merge
from queries.notify import notify_finished

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None = None


def backoff(attempt: int) -> float:
    """Seconds before the next attempt: exponential with jitter, capped."""
    base = settings.KILN_RUN_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    return min(base * random.uniform(0.8, 1.2), settings.KILN_RUN_RETRY_MAX_SECONDS)


def execute_run(run_id: int) -> Outcome | None:
    """Claim and run one run. None when another delivery of the task had it already."""
    run = claim_and_read(run_id)
    if run is None:
        log.info("run %s not claimed: already taken or not due", run_id)
        return None
    datasource = run.datasource
    if datasource is None:
        message = "The datasource of this run was deleted before it was sent."
        return _finish(run, RunStatus.FAILED, error=message, field="datasource")
    files = []
    if run.file_count != 0:
        # A merge's rows send the same files, stored once with the merge (its parent).
        owner = run.parent_id or run.pk
        files = [StoredFile(a) for a in RunAttachment.objects.filter(run_id=owner).defer("content")]
    context = RunContext(run, files)
    try:
        result = datasource.plugin.run(datasource.settings(), run.action, run.fields, context)
    except DeliveryUnknown as exc:
        return _finish(run, RunStatus.UNKNOWN, error=exc.message, failure=exc)
    except PluginError as exc:
        if exc.code == UNEXPECTED:
            # Recorded as the exception the plugin did not expect, not as its wrapper.
            return _finish(run, RunStatus.FAILED, error=exc.message, failure=exc.__cause__)
        return _failed(run, exc)
    except Exception as exc:
        # Loading the settings is outside the plugin's guard.
        log.exception("run %s failed unexpectedly", run_id)
        error = PluginError(f"Kiln failed to run this query ({type(exc).__name__}).")
        return _finish(run, RunStatus.FAILED, error=error.message, failure=exc)
    return _finish(run, RunStatus.SENT, data=result.data, details=result.details)


class RunContext:
    """What a plugin's ``execute`` gets beside the settings and fields: the run's
    stored files and payload, and its workspace (read only if the plugin asks)."""

    def __init__(self, run: QueryRun, files: list[StoredFile]):
        self._run = run
        self.files = files
        self.payload = run.payload
        self.payload_meta = run.payload_meta

    @cached_property
    def workspace(self):
        return self._run.workspace


class _Slice(Func):
    """SUBSTR(content, start, length) of a binary column: a slice read by the server."""

    function = "SUBSTR"
    output_field = BinaryField()


class StoredFile:
    """A run's file as its plugin reads it, from the database: whole (``data``) or a
    piece at a time (``chunks``), so that a large file is never held whole in a worker
    that streams it."""

    def __init__(self, attachment: RunAttachment):
        self.pk = attachment.pk
        self.name = attachment.name
        self.content_type = attachment.content_type
        self.size = attachment.size

    @property
    def type(self) -> str:
        return self.content_type

    @cached_property
    def data(self) -> bytes:
        content = RunAttachment.objects.values_list("content", flat=True).get(pk=self.pk)
        return bytes(content)

    def chunks(self, size: int) -> Iterator[bytes]:
        if connection.vendor == "sqlite":
            # SQLite's SUBSTR reads the whole value for each slice; its incremental
            # blob reader does not.
            connection.ensure_connection()
            table = RunAttachment._meta.db_table
            with connection.connection.blobopen(table, "content", self.pk, readonly=True) as blob:
                while piece := blob.read(size):
                    yield piece
            return
        rows = RunAttachment.objects.filter(pk=self.pk)
        for start in range(0, self.size, size):
            piece = rows.annotate(piece=_Slice("content", Value(start + 1), Value(size)))
            yield bytes(piece.values_list("piece", flat=True).get())


def _failure(run: QueryRun, exc: BaseException) -> list[dict]:
    entry = {
        "at": timezone.now().isoformat(),
        "attempt": run.attempts,
        "type": type(exc).__name__,
        "message": getattr(exc, "message", str(exc)),
    }
    return [*run.failures, entry]


def retry_deadline(run: QueryRun) -> datetime:
    """The last time a transient failure of ``run`` may be retried: the retry window
    (``KILN_RUN_RETRY_WINDOW_SECONDS``) after the run's own timeout has run out. The
    window is a mail server's (minutes: a greylisting server wants the retry that late),
    apart from how long a caller waits for an answer. A scheduled run's budget starts at
    its send time, not when it was asked for; a merge's row's timeout already counts
    from its own turn (queries.merge)."""
    start = run.send_at or run.created_at
    budget = run.timeout_seconds + settings.KILN_RUN_RETRY_WINDOW_SECONDS
    return start + timedelta(seconds=budget)


def _failed(run: QueryRun, exc: PluginError) -> Outcome:
    deadline = retry_deadline(run)
    delay = backoff(run.attempts)
    retry_at = timezone.now() + timedelta(seconds=delay)
    if exc.permanent or run.attempts >= run.max_attempts or retry_at > deadline:
        error = exc.message
        if not exc.permanent:
            error = f"Gave up after {run.attempts} attempt(s): {exc.message}"
        return _finish(run, RunStatus.FAILED, error=error, field=exc.field or "", failure=exc)
    updated = record(
        run.pk,
        status=RunStatus.SCHEDULED,
        next_attempt_at=retry_at,
        error=exc.message,
        error_field=exc.field or "",
        failures=_failure(run, exc),
    )
    log.info("run %s attempt %s failed (%s); retry in %.1f s", run.pk, run.attempts, exc, delay)
    notify_finished(run.pk)
    return Outcome(RunStatus.SCHEDULED, retry_in=delay if updated else None)


def _finish(
    run: QueryRun,
    status: str,
    *,
    data=None,
    details=None,
    error: str = "",
    field: str = "",
    failure: BaseException | None = None,
) -> Outcome:
    record(
        run.pk,
        status=status,
        data=data,
        details=details or {},
        error=error,
        error_field=field,
        failures=_failure(run, failure) if failure else run.failures,
        finished_at=timezone.now(),
    )
    log.info("run %s finished: %s", run.pk, status)
    notify_finished(run.pk)
    if run.parent_id is not None:
        settle_merge(run.parent_id)
    return Outcome(status)
