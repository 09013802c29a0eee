from __future__ import annotations

import hashlib
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Count
from django.utils import timezone

from builder.jsonfield import OrderedJSONField
from builder.models import App, Query
from datasources.models import Datasource
from queries.notify import RunWaiter, notify_finished
from queries.schedule import describe
from workspaces.models import Workspace


class RunStatus(models.TextChoices):
    """The delivery state machine (docs/reliability.md)."""

    #: Due now, waiting for a worker.
    QUEUED = "queued", "Queued"
    #: Waiting for a later time: its send_at (attempts 0), or a retry after a
    #: temporary failure.
    SCHEDULED = "scheduled", "Scheduled"
    #: Claimed by a worker, recorded before the SMTP transaction starts.
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    #: The connection was lost after the message was handed over, or the worker died
    #: while sending: a person decides; never sent again by itself.
    UNKNOWN = "unknown", "Unknown"
    #: Stopped by a person before it was sent.
    CANCELLED = "cancelled", "Cancelled"


def runs_of(user, visitor: str = "") -> models.Q:
    """The runs one person started: a signed-in user's by user, an anonymous visitor's by
    the id in their session. Never "every run with no user": that would be everyone's."""
    if getattr(user, "pk", None):
        return models.Q(created_by_id=user.pk)
    if visitor:
        return models.Q(created_by__isnull=True, visitor=visitor)
    return models.Q(pk__in=[])


#: The outbox's columns of a run and the email fields they come from.
SUMMARY_FIELDS = {
    "subject": "subject",
    "mail_from": "from",
    "mail_to": "to",
    "mail_cc": "cc",
    "mail_bcc": "bcc",
}


def addresses_of(value) -> str:
    """A recipients field (comma-separated text or a list) as one line of text."""
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value if item)
    return str(value or "").strip()


def outbox_summary(fields: dict) -> dict[str, str]:
    """The subject, sender and recipients of a run's fields as the outbox lists and
    searches them (``SUMMARY_FIELDS``); empty for a query that sends no email."""
    if not isinstance(fields, dict):
        fields = {}
    summary = {column: addresses_of(fields.get(name)) for column, name in SUMMARY_FIELDS.items()}
    summary["subject"] = summary["subject"][:255]
    return summary


FINISHED = (RunStatus.SENT, RunStatus.FAILED, RunStatus.UNKNOWN, RunStatus.CANCELLED)
#: Not yet claimed by a worker: what the claim and the sweep look for.
WAITING = (RunStatus.QUEUED, RunStatus.SCHEDULED)


class QueryRun(models.Model):
    """One run of a query: the outbox row. Stored before its task is enqueued, so that
    nothing is lost while the broker is down; claimed atomically, so nothing runs twice."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="runs")
    #: The app and query it ran, and the query's name then: the outbox keeps a run whose
    #: query was deleted since (query NULL), under its app and name. Deleting the app
    #: deletes its runs.
    #: Indexed by app_outbox_by_time (app first), which also serves its deletes.
    app = models.ForeignKey(
        App,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="runs",
        db_index=False,
    )
    query = models.ForeignKey(
        Query, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    query_name = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    #: For an anonymous visitor of a public app (created_by is NULL): the random id kept
    #: in their session, so that they poll and read only their own runs.
    visitor = models.CharField(max_length=64, blank=True, default="")
    #: What the run goes through, fixed when it is created: from the published version
    #: for a run of the published app, from the query as edited otherwise. The outbox
    #: reads these, never the query's row, which the editor may change meanwhile. Null
    #: when the datasource was deleted before the run was sent (the run then fails).
    datasource = models.ForeignKey(
        Datasource, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    action = models.CharField(max_length=50, blank=True)
    timeout_seconds = models.PositiveIntegerField(default=60)
    #: The evaluated fields, files left out (they are RunAttachments); never a secret.
    fields = OrderedJSONField(default=dict)
    #: What the plugin built from the fields when the run was created (an email's
    #: bytes, attachments left out), and what it needs beside it (the envelope): sent as
    #: stored, never built again. Null for a plugin that builds nothing ahead.
    payload = models.BinaryField(null=True, blank=True)
    payload_meta = models.JSONField(default=dict, blank=True)
    #: How many RunAttachments it has: a worker reads them only when there are some.
    #: Null for runs stored before it was counted.
    file_count = models.PositiveSmallIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    data = OrderedJSONField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    error_field = models.CharField(max_length=50, blank=True)
    #: Each failed attempt: {"at", "attempt", "type", "message"}.
    failures = models.JSONField(default=list, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    #: When the run was asked to be sent (the query's send_at, evaluated); null: at
    #: once. Its retries' deadline counts from here, not from created_at.
    send_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: What the outbox lists and searches, taken from the fields when the run is stored
    #: (``fields`` is plain ``json`` on PostgreSQL, which cannot be searched by key).
    subject = models.CharField(max_length=255, blank=True)
    mail_from = models.TextField(blank=True)
    mail_to = models.TextField(blank=True)
    mail_cc = models.TextField(blank=True)
    mail_bcc = models.TextField(blank=True)
    #: The run this one sends again (the outbox's Resend).
    resent_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends"
    )
    #: A mail merge (docs/merge.md): the parent run holds no message of its own, only
    #: ``merge_total`` (its number of rows); each row is a child run with its
    #: ``row_index``, sent like any other run.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    row_index = models.PositiveIntegerField(null=True, blank=True)
    merge_total = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The outbox pages: a workspace's or an app's runs, newest first.
            models.Index(fields=["workspace", "-created_at", "-id"], name="outbox_by_time"),
            models.Index(fields=["app", "-created_at", "-id"], name="app_outbox_by_time"),
            # What the sweep and the claim look for.
            models.Index(
                fields=["next_attempt_at"],
                name="queued_runs",
                condition=models.Q(status__in=["queued", "scheduled"]),
            ),
            models.Index(fields=["query", "created_by", "-created_at"], name="last_run"),
            models.Index(fields=["visitor", "-created_at"], name="visitor_runs"),
            # A merge's progress (counts by status) and its rows in order.
            models.Index(
                fields=["parent", "status"],
                name="merge_rows",
                condition=models.Q(parent__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.query_id} ({self.status})"

    def save(self, *args, **kwargs) -> None:
        """Fills what the outbox lists (app, query name, subject, recipients) when the
        creator did not, so that every way of storing a run keeps the outbox whole."""
        if self.query_id is not None and (self.app_id is None or not self.query_name):
            app_id, name = Query.objects.values_list("app_id", "name").get(pk=self.query_id)
            self.app_id = self.app_id or app_id
            self.query_name = self.query_name or name
        if not any(getattr(self, column) for column in SUMMARY_FIELDS):
            for column, value in outbox_summary(self.fields).items():
                setattr(self, column, value)
        super().save(*args, **kwargs)

    @property
    def ran_by(self) -> str:
        """Who started the run, as the outbox shows it (reads ``created_by``)."""
        if self.created_by is not None:
            return self.created_by.get_username()
        return "visitor" if self.visitor else "a former member"

    @property
    def duration_seconds(self) -> float | None:
        """From the claim of its last attempt to its end; None until it ended."""
        start = self.started_at or self.created_at
        if self.finished_at is None or start is None:
            return None
        return max((self.finished_at - start).total_seconds(), 0.0)

    @property
    def label(self) -> str:
        """How the audit log and the outbox name the run."""
        return f"run {self.pk} of {self.query_name or 'a deleted query'}"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def scheduled_later(self) -> bool:
        """Waiting for its send_at, never tried yet: nothing to wait for until then."""
        return self.status == RunStatus.SCHEDULED and self.attempts == 0 and bool(self.send_at)

    @property
    def retrying(self) -> bool:
        """Failed at least once and queued again: waiting for its next attempt."""
        return self.status == RunStatus.SCHEDULED and self.attempts > 0

    @property
    def status_label(self) -> str:
        """The status as people read it: "Retrying" for a scheduled run that already
        failed once, so a retry is not mistaken for a send planned for later."""
        return "Retrying" if self.retrying else self.get_status_display()

    @property
    def retrying_at(self):
        """When its next attempt is due while it waits to retry; None otherwise."""
        return self.next_attempt_at if self.retrying else None

    def retries_after(self, seconds: float) -> bool:
        """Waiting for a retry due more than ``seconds`` from now: a caller that waits
        that long would hear nothing, so it is told when instead."""
        at = self.retrying_at
        return at is not None and at > timezone.now() + timedelta(seconds=seconds)

    @property
    def next_attempt_shown(self) -> str:
        """Its next attempt as every page shows a send time (queries.schedule.describe):
        with the date and the time zone, so a retry past midnight, or read from another
        zone, is not taken for another time."""
        return describe(self.next_attempt_at) if self.next_attempt_at else ""

    @property
    def error_field_label(self) -> str:
        """The field its error is on, as the page that edits it labels it ("Port", not
        ``port``); the stored name when the datasource is gone."""
        if not self.error_field or self.datasource is None:
            return self.error_field
        return self.datasource.plugin.field_label(self.action, self.error_field)

    @property
    def retry_note(self) -> str:
        """What a person is told while it waits to retry: when and why."""
        if self.retrying_at is None:
            return ""
        return f"Retrying at {self.next_attempt_shown}: {self.error}"

    @property
    def _waits_for_later(self) -> bool:
        return self.retrying or self.scheduled_later

    def wait(self, seconds: float, *, until_retrying: bool = False) -> QueryRun:
        """The run re-read until it has finished (or, with ``until_retrying``, waits for
        a later time: its send_at, or its next attempt after a failure) or ``seconds``
        have passed. The one way of
        waiting for a run: the editor's Run, the API's ``?wait=`` and the viewer use it.

        Woken by the run's end (queries.notify): the channel is subscribed before the
        run is read, so an end recorded in between is not missed. With no channel (no
        broker, or Redis down) the run is read again every few tenths of a second."""
        deadline = time.monotonic() + max(seconds, 0)
        if seconds <= 0:
            self.refresh_from_db()
            return self
        with RunWaiter(self.pk) as waiter:
            self.refresh_from_db()
            while not (self.finished or (until_retrying and self._waits_for_later)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                waiter.wait(remaining)
                self.refresh_from_db()
        return self

    @property
    def is_merge(self) -> bool:
        """The parent of a mail merge: it sends nothing itself, its rows (children) do."""
        return self.merge_total is not None

    def progress(self) -> dict:
        """A mail merge's counts, from its rows, in one aggregate SQL query (on the
        merge_rows index): ``total``, ``sent``, ``failed``, ``cancelled``, ``unknown``,
        ``remaining`` (waiting or being sent), ``rate`` (emails sent a minute: over the
        last minute, or since the start when it began less than a minute ago or has
        finished), ``started_at``, ``finished`` and the parent's ``status``."""
        now = timezone.now()
        minute_ago = now - timedelta(minutes=1)
        rows = (
            QueryRun.objects.filter(parent_id=self.pk)
            .order_by()
            .values("status")
            .annotate(
                n=Count("id"), recent=Count("id", filter=models.Q(finished_at__gte=minute_ago))
            )
        )
        counts = dict.fromkeys(RunStatus.values, 0)
        recent = 0
        for row in rows:
            counts[row["status"]] = row["n"]
            if row["status"] == RunStatus.SENT:
                recent = row["recent"]
        remaining = sum(counts[s] for s in (*WAITING, RunStatus.SENDING))
        if not remaining and not self.finished and settle_merge(self.pk):
            # Its last row ended without finishing it (a worker killed in between).
            self.refresh_from_db()
        sent = counts[RunStatus.SENT]
        started = self.started_at or self.created_at
        end = self.finished_at if self.finished and self.finished_at else now
        elapsed = max((end - started).total_seconds(), 1.0)
        # Over the last minute while it runs; over its whole time when it has not run
        # a minute yet, or has finished.
        rate = float(recent) if elapsed >= 60 and not self.finished else sent * 60 / elapsed
        return {
            "total": self.merge_total or 0,
            "sent": sent,
            "failed": counts[RunStatus.FAILED],
            "cancelled": counts[RunStatus.CANCELLED],
            "unknown": counts[RunStatus.UNKNOWN],
            "sending": counts[RunStatus.SENDING],
            "waiting": counts[RunStatus.QUEUED] + counts[RunStatus.SCHEDULED],
            "remaining": remaining,
            "rate": round(rate, 1),
            "started_at": started.isoformat(),
            "finished": self.finished,
            "status": self.status,
        }

    def cancel(self, by: str) -> bool:
        """Cancel the run if no worker has claimed it yet: one conditional UPDATE from
        queued or scheduled, the same states the claim takes, so exactly one of a cancel
        and a claim wins. False (and the run re-read) when it was already sending or
        finished."""
        now = timezone.now()
        cancelled = QueryRun.objects.filter(pk=self.pk, status__in=WAITING).update(
            status=RunStatus.CANCELLED, error=f"Cancelled by {by}.", finished_at=now
        )
        self.refresh_from_db()
        if cancelled and self.parent_id is not None:
            settle_merge(self.parent_id)
        return cancelled == 1

    def as_api(self) -> dict:
        retrying_at = self.retrying_at
        body = {
            "id": self.pk,
            "status": self.status,
            "data": self.data,
            "error": self.error or None,
            "error_field": self.error_field or None,
            "attempts": self.attempts,
            "send_at": self.send_at.isoformat() if self.send_at else None,
            "retrying_at": retrying_at.isoformat() if retrying_at else None,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }
        if self.is_merge:
            body["progress"] = self.progress()
        if self.parent_id is not None:
            body.update(parent=self.parent_id, row_index=self.row_index)
        return body


def merge_outcome(counts: dict[str, int], total: int) -> tuple[str, str]:
    """A finished merge's status and error from its rows' counts by status: cancelled
    if it was stopped with rows unsent, else failed if a row failed, else unknown if a
    row's delivery is unknown, else sent."""
    sent, failed = counts.get(RunStatus.SENT, 0), counts.get(RunStatus.FAILED, 0)
    cancelled, unknown = counts.get(RunStatus.CANCELLED, 0), counts.get(RunStatus.UNKNOWN, 0)
    others = ", ".join(f"{n} {what}" for n, what in ((failed, "failed"), (unknown, "unknown")) if n)
    others = f", {others}" if others else ""
    if cancelled:
        return (
            RunStatus.CANCELLED,
            f"Stopped: {cancelled} of {total} rows not sent ({sent} sent{others}).",
        )
    if failed:
        extra = f", {unknown} unknown" if unknown else ""
        return RunStatus.FAILED, f"{failed} of {total} rows failed{extra}."
    if unknown:
        return (
            RunStatus.UNKNOWN,
            f"{unknown} of {total} rows may or may not have been sent (unknown).",
        )
    return RunStatus.SENT, ""


def _has_unfinished_rows(parent_id: int) -> bool:
    """Whether a merge has rows waiting or being sent: one indexed read (merge_rows),
    written as SQL once, since a worker asks after every row (the ORM's work to build
    it cost as much as the claim)."""
    table = connection.ops.quote_name(QueryRun._meta.db_table)
    sql = f"SELECT 1 FROM {table} WHERE parent_id = %s AND status IN (%s, %s, %s) LIMIT 1"
    with connection.cursor() as cursor:
        cursor.execute(sql, [parent_id, *WAITING, RunStatus.SENDING])
        return cursor.fetchone() is not None


def settle_merge(parent_id: int) -> bool:
    """Finish a merge whose rows have all finished: its status and error from them
    (:func:`merge_outcome`), its ``data`` their counts. Called after each row ends
    (and on reading its progress); True when this call finished it.

    Race-free: the parent is locked first (resume and retry take the same lock before
    reopening rows), then the rows counted; only a parent still sending is changed, so
    of two last rows ending together one finishes it, with the same counts. The read
    before the lock only skips the work while rows are left: a row's own outcome is
    committed before it asks, so the last row to end always reaches the lock."""
    unfinished = (*WAITING, RunStatus.SENDING)
    if _has_unfinished_rows(parent_id):
        # The common case, every row but the last: no lock, one indexed read.
        return False
    with transaction.atomic():
        parent = QueryRun.objects.select_for_update().filter(pk=parent_id).first()
        if parent is None or parent.status != RunStatus.SENDING or not parent.is_merge:
            return False
        counts = dict(
            QueryRun.objects.filter(parent_id=parent_id)
            .order_by()
            .values_list("status")
            .annotate(n=Count("id"))
        )
        if any(counts.get(status) for status in unfinished):
            return False
        status, error = merge_outcome(counts, parent.merge_total or 0)
        data = {
            "total": parent.merge_total,
            **{key: counts.get(key, 0) for key in ("sent", "failed", "cancelled", "unknown")},
        }
        QueryRun.objects.filter(pk=parent_id, status=RunStatus.SENDING).update(
            status=status, error=error, data=data, finished_at=timezone.now()
        )
    notify_finished(parent_id)
    return True


class RunAttachment(models.Model):
    """A file a run sends, copied at run time so that a retry sends the same bytes.

    The bytes live in the row, not in MEDIA_ROOT: a worker on another machine reads the
    run and its files from the database alone, with no shared disk. Their size is capped
    before they are stored (KILN_SMTP_MAX_ATTACHMENT_BYTES, checked by the plugin)."""

    run = models.ForeignKey(QueryRun, on_delete=models.CASCADE, related_name="attachments")
    position = models.PositiveSmallIntegerField()
    content = models.BinaryField()
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()

    class Meta:
        ordering = ["position"]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """A per-user token for the run API. Only its SHA-256 is stored."""

    PREFIX = "kiln_"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.hint}… ({self.user})"

    @classmethod
    def issue(cls, user, name: str = "") -> tuple[ApiToken, str]:
        """A new token and its key; the key is shown once and never stored."""
        key = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, digest=_digest(key), hint=key[:12])
        return token, key

    @classmethod
    def authenticate(cls, key: str):
        token = cls.objects.select_related("user").filter(digest=_digest(key)).first()
        if token is None or not token.user.is_active:
            return None
        cls.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return token.user
