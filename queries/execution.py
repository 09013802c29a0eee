"""Creating runs (evaluate, check, store, enqueue) and executing them (claim, send,
record, retry). The same code runs in a Celery worker and, with no REDIS_URL, eagerly
in the web process."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from datasources.errors import DeliveryUnknown, PluginError
from datasources.plugins.base import FileContent
from queries.bindings import BindingError, evaluate
from queries.context import binding_context, check_inputs
from queries.errors import RunRequestError
from queries.models import Query, QueryRun, RunAttachment, RunStatus

log = logging.getLogger(__name__)


def evaluate_query_fields(query: Query, context: dict, fields: dict | None = None) -> dict:
    """Every field of ``query`` (or ``fields``, a published copy of them) evaluated;
    HTML fields (per the plugin) escape the values bound into them."""
    plugin = query.datasource.plugin
    late = plugin.html_candidates
    fields = query.fields if fields is None else fields
    try:
        evaluated = {
            name: evaluate(name, template, context)
            for name, template in fields.items()
            if name not in late
        }
        html = plugin.html_fields(query.action, evaluated)
        for name in late & fields.keys():
            evaluated[name] = evaluate(name, fields[name], context, html=name in html)
    except BindingError as exc:
        raise RunRequestError(exc.field, str(exc)) from None
    return evaluated


def create_run(
    query: Query,
    user,
    inputs: dict | None = None,
    *,
    url: dict | None = None,
    page=None,
    fields: dict | None = None,
) -> QueryRun:
    """Evaluate and check the query's fields (or ``fields``, as published), store the
    run, and enqueue it once the transaction commits. Raises ``RunRequestError``
    (nothing stored) for bad input."""
    inputs = check_inputs(inputs)
    context = binding_context(query.app, user, inputs, url=url, page=page)
    evaluated = evaluate_query_fields(query, context, fields)
    plugin = query.datasource.plugin
    try:
        prepared = plugin.prepare(
            query.action, evaluated, SimpleNamespace(workspace=query.app.workspace)
        )
    except PluginError as exc:
        raise RunRequestError(exc.field or "fields", exc.message) from None
    with transaction.atomic():
        run = QueryRun.objects.create(
            workspace=query.app.workspace,
            query=query,
            created_by=user if getattr(user, "pk", None) else None,
            fields=prepared.fields,
            max_attempts=settings.KILN_RUN_MAX_ATTEMPTS,
        )
        for position, file in enumerate(prepared.files):
            RunAttachment.objects.create(
                run=run,
                position=position,
                name=file.name,
                content_type=file.content_type,
                size=file.size,
                file=ContentFile(file.data, name=f"{position}-{file.name}"),
            )
        transaction.on_commit(lambda: enqueue(run.pk))
    log.info("run %s of query %s created (queued)", run.pk, query.pk)
    return run


def enqueue(run_id: int, countdown: float | None = None) -> bool:
    """Hand the run to Celery. If the broker is down the run stays queued and the sweep
    enqueues it later: nothing is lost."""
    from queries.tasks import execute_run_task

    QueryRun.objects.filter(pk=run_id).update(enqueued_at=timezone.now())
    try:
        result = execute_run_task.apply_async(
            (run_id,),
            countdown=countdown,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        )
    except Exception as exc:  # kombu raises OperationalError, redis-py its own errors
        if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
            raise
        QueryRun.objects.filter(pk=run_id).update(enqueued_at=None)
        log.warning("broker unavailable, run %s stays queued for the sweep: %s", run_id, exc)
        return False
    QueryRun.objects.filter(pk=run_id).update(task_id=result.id or "")
    return True


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None = None


def backoff(attempt: int) -> float:
    """Seconds before the next attempt: exponential with jitter, capped."""
    base = settings.KILN_RUN_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    return min(base * random.uniform(0.8, 1.2), settings.KILN_RUN_RETRY_MAX_SECONDS)


def claim(run_id: int) -> bool:
    """Move a due run from queued to running; exactly one caller can win."""
    now = timezone.now()
    claimed = QueryRun.objects.filter(
        pk=run_id, status=RunStatus.QUEUED, next_attempt_at__lte=now
    ).update(status=RunStatus.RUNNING, started_at=now, attempts=F("attempts") + 1)
    return claimed == 1


def execute_run(run_id: int) -> Outcome | None:
    """Claim and run one run. None when another delivery of the task had it already."""
    if not claim(run_id):
        log.info("run %s not claimed: already taken or not due", run_id)
        return None
    run = QueryRun.objects.select_related("query__datasource", "workspace").get(pk=run_id)
    datasource = run.query.datasource
    files = [FileContent(a.name, a.content_type, _read(a)) for a in run.attachments.all()]
    context = SimpleNamespace(workspace=run.workspace, files=files)
    try:
        result = datasource.plugin.execute(
            datasource.settings(), run.query.action, run.fields, context
        )
    except DeliveryUnknown as exc:
        return _finish(run, RunStatus.UNKNOWN, error=exc.message, failure=exc)
    except PluginError as exc:
        return _failed(run, exc)
    except Exception as exc:
        log.exception("run %s failed unexpectedly", run_id)
        error = PluginError(f"Kiln failed to run this query ({type(exc).__name__}).")
        return _finish(run, RunStatus.ERROR, error=error.message, failure=exc)
    return _finish(run, RunStatus.SUCCESS, data=result.data, details=result.details)


def _read(attachment: RunAttachment) -> bytes:
    with attachment.file.open("rb") as f:
        return f.read()


def _failure(run: QueryRun, exc: BaseException) -> list[dict]:
    entry = {
        "at": timezone.now().isoformat(),
        "attempt": run.attempts,
        "type": type(exc).__name__,
        "message": getattr(exc, "message", str(exc)),
    }
    return [*run.failures, entry]


def _failed(run: QueryRun, exc: PluginError) -> Outcome:
    deadline = run.created_at + timedelta(seconds=run.query.timeout_seconds)
    delay = backoff(run.attempts)
    retry_at = timezone.now() + timedelta(seconds=delay)
    if exc.permanent or run.attempts >= run.max_attempts or retry_at > deadline:
        error = exc.message
        if not exc.permanent:
            error = f"Gave up after {run.attempts} attempt(s): {exc.message}"
        return _finish(run, RunStatus.ERROR, error=error, field=exc.field or "", failure=exc)
    updated = QueryRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=RunStatus.QUEUED,
        next_attempt_at=retry_at,
        error=exc.message,
        error_field=exc.field or "",
        failures=_failure(run, exc),
    )
    log.info("run %s attempt %s failed (%s); retry in %.1f s", run.pk, run.attempts, exc, delay)
    return Outcome(RunStatus.QUEUED, retry_in=delay if updated else None)


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
    QueryRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=status,
        data=data,
        details=details or {},
        error=error,
        error_field=field,
        failures=_failure(run, failure) if failure else run.failures,
        finished_at=timezone.now(),
    )
    log.info("run %s finished: %s", run.pk, status)
    return Outcome(status)


def sweep(now=None) -> dict[str, int]:
    """Re-enqueue queued runs whose task may be lost (never enqueued, or due for longer
    than the grace period), and mark runs stuck in running as unknown."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.KILN_SWEEP_GRACE_SECONDS)
    lost = QueryRun.objects.filter(status=RunStatus.QUEUED).filter(
        Q(enqueued_at__isnull=True, next_attempt_at__lte=now)
        | Q(next_attempt_at__lte=now - grace, enqueued_at__lte=now - grace)
    )
    enqueued = sum(enqueue(run_id) for run_id in lost.values_list("pk", flat=True))
    stuck_before = now - timedelta(seconds=settings.KILN_RUN_STUCK_SECONDS)
    stuck = QueryRun.objects.filter(status=RunStatus.RUNNING, started_at__lt=stuck_before).update(
        status=RunStatus.UNKNOWN,
        error="The worker stopped while sending; the email may or may not have been sent.",
        finished_at=now,
    )
    return {"enqueued": enqueued, "unknown": stuck}
