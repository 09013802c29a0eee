"""The Celery side of the outbox: the tasks, handing a run to the broker, and the sweep
that re-enqueues runs whose task may have been lost."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db.models import F, QuerySet
from django.utils import timezone

from queries.checks import ETA_SHARE
from queries.models import WAITING, QueryRun, RunStatus, settle_merge
from queries.outbox import execute_run

log = logging.getLogger(__name__)


@shared_task(name="queries.execute_run", acks_late=True, ignore_result=True)
def execute_run_task(run_id: int) -> str:
    outcome = execute_run(run_id)
    if outcome is None:
        return "skipped"
    if outcome.retry_in is not None:
        enqueue(run_id, countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="queries.sweep_outbox", ignore_result=True)
def sweep_outbox_task() -> dict:
    return sweep()


#: One quick second try: a broker that refuses connections is down, and the request
#: that stored the run must answer at once (the sweep enqueues the run later).
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0.1, "interval_step": 0.1}


def enqueue(run_id: int, countdown: float | None = None) -> bool:
    """Hand the run to Celery. If the broker is down the run stays waiting with no
    ``enqueued_at`` and the sweep enqueues it later: nothing is lost, and the caller
    (a web request) waits at most about a tenth of a second plus the broker's connect
    timeout (``KILN_BROKER_CONNECT_TIMEOUT``) for each of two attempts."""
    if countdown and execute_run_task.app.conf.task_always_eager:
        # Run now, it would find nothing due: left to the sweep, which sends it at the
        # first pass once due. enqueued_at is cleared, or a retry (enqueued for its
        # first attempt) would wait for the sweep's grace period as if its task were lost.
        QueryRun.objects.filter(pk=run_id).update(enqueued_at=None)
        return False
    QueryRun.objects.filter(pk=run_id).update(enqueued_at=timezone.now())
    try:
        result = execute_run_task.apply_async(
            (run_id,),
            countdown=countdown,
            retry=True,
            retry_policy=PUBLISH_RETRY,
        )
    except Exception as exc:  # kombu raises OperationalError, redis-py its own errors
        if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
            raise
        QueryRun.objects.filter(pk=run_id).update(enqueued_at=None)
        log.warning("broker unavailable, run %s stays queued for the sweep: %s", run_id, exc)
        return False
    QueryRun.objects.filter(pk=run_id).update(task_id=result.id or "")
    return True


def eta_horizon() -> timedelta:
    """How far ahead a task may be given an ETA: less than the broker's visibility
    timeout, after which Redis hands a task a worker still holds to another worker (a
    harmless duplicate, thanks to the claim, but a wasted one), and no further than the
    next sweeps can correct."""
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    return timedelta(seconds=max(visibility * ETA_SHARE, 0))


def enqueue_new(run_id: int, due=None) -> bool:
    """Hand a new run to Celery: at once, or with an ETA when it is scheduled (``due``)
    within :func:`eta_horizon`. A run due later than that is left to the sweep, which
    enqueues it with an ETA once it comes within the horizon (``enqueued_at`` stays
    null until then)."""
    if due is None:
        return enqueue(run_id)
    wait = (due - timezone.now()).total_seconds()
    if wait > eta_horizon().total_seconds():
        return False
    return enqueue(run_id, countdown=max(wait, 0))


def enqueue_scheduled(now=None, *, limit: int | None = None) -> int:
    """Enqueue, with an ETA, the scheduled runs (their send_at, never tried) due within
    :func:`eta_horizon` that no task may be waiting for: never enqueued, or enqueued
    only before they came due. The second kind is sent again at its time by the sweep:
    the worker that held its ETA task may have died (after a SIGKILL Redis gives the
    task back only after the visibility timeout); a second task finds nothing to claim
    if the first one ran."""
    now = now or timezone.now()
    scheduled = _scheduled()
    later = scheduled.filter(enqueued_at__isnull=True, next_attempt_at__lte=now + eta_horizon())
    due = scheduled.filter(next_attempt_at__lte=now, enqueued_at__lt=F("next_attempt_at"))
    limit = settings.KILN_SWEEP_BATCH if limit is None else limit
    found = _enqueue_at_their_time(due, now, limit)
    return found + _enqueue_at_their_time(later, now, limit - found)


def _scheduled() -> QuerySet[QueryRun]:
    """Runs waiting for their send_at, never tried yet."""
    return QueryRun.objects.filter(status=RunStatus.SCHEDULED, attempts=0, send_at__isnull=False)


def _enqueue_at_their_time(runs: QuerySet[QueryRun], now, limit: int) -> int:
    """Up to ``limit`` of ``runs``, soonest first, enqueued with an ETA at their time."""
    rows = runs.order_by("next_attempt_at", "pk").values_list("pk", "next_attempt_at")
    return sum(
        enqueue(run_id, countdown=max((at - now).total_seconds(), 0))
        for run_id, at in rows[: max(limit, 0)]
    )


@worker_ready.connect
def resend_scheduled_on_start(sender=None, **kwargs) -> None:
    """A worker that starts enqueues again the ETA tasks of scheduled runs due within the
    horizon: a worker killed while holding them took them with it until Redis' visibility
    timeout, and the run must still go out at its time. Duplicates are harmless (the
    claim), and a restart is rare."""
    try:
        now = timezone.now()
        soon = _scheduled().filter(next_attempt_at__lte=now + eta_horizon())
        count = _enqueue_at_their_time(soon, now, settings.KILN_SWEEP_BATCH)
    except Exception:  # the worker must start even when the database is not there yet
        log.exception("could not enqueue the scheduled runs again at start")
        return
    if count:
        log.info("enqueued %s scheduled run(s) again at start", count)


def enqueue_many(run_ids: list[int]) -> int:
    """Hand many runs to Celery (a merge's rows): their ``enqueued_at`` in one UPDATE,
    then one message each. If the broker fails, the rest stay unenqueued for the sweep.
    How many were handed over."""
    if not run_ids:
        return 0
    QueryRun.objects.filter(pk__in=run_ids).update(enqueued_at=timezone.now())
    done = 0
    try:
        with _producer() as producer:
            for run_id in run_ids:
                execute_run_task.apply_async(
                    (run_id,), producer=producer, retry=True, retry_policy=PUBLISH_RETRY
                )
                done += 1
    except Exception as exc:  # kombu raises OperationalError, redis-py its own errors
        if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
            raise
        QueryRun.objects.filter(pk__in=run_ids[done:]).update(enqueued_at=None)
        log.warning(
            "broker unavailable, %s runs stay queued for the sweep: %s", len(run_ids) - done, exc
        )
    return done


def _producer():
    """One producer (one broker connection) for many messages; none when tasks run
    eagerly (nothing is published)."""
    if execute_run_task.app.conf.task_always_eager:
        return contextlib.nullcontext(None)
    return execute_run_task.app.producer_or_acquire()


#: How far ahead (seconds) a merge's walk enqueues rows spaced by its sending rate; it
#: walks again before that time is up.
MERGE_LOOKAHEAD = 60.0


@shared_task(name="queries.enqueue_merge", ignore_result=True)
def enqueue_merge_task(parent_id: int) -> int:
    return enqueue_merge(parent_id)


def enqueue_merge(parent_id: int) -> int:
    """Enqueue a merge's waiting rows that no task holds yet, in row order: those due
    now at once, those due within MERGE_LOOKAHEAD (spaced by KILN_MERGE_RATE_PER_MINUTE)
    with a countdown; while later rows remain, walk again shortly before they are due.
    A lost walk loses nothing: the sweep enqueues every due run that was never enqueued."""
    now = timezone.now()
    horizon = now + timedelta(seconds=MERGE_LOOKAHEAD)
    rows = QueryRun.objects.filter(
        parent_id=parent_id, status__in=WAITING, enqueued_at__isnull=True
    ).order_by("row_index")
    due = list(rows.filter(next_attempt_at__lte=now).values_list("pk", flat=True))
    count = enqueue_many(due)
    soon = rows.filter(next_attempt_at__gt=now, next_attempt_at__lte=horizon)
    for run_id, at in soon.values_list("pk", "next_attempt_at"):
        # A little late rather than early: a task run before its row is due claims nothing.
        count += enqueue(run_id, countdown=(at - now).total_seconds() + 0.05)
    eager = getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)
    if not eager and rows.filter(next_attempt_at__gt=horizon).exists():
        try:
            enqueue_merge_task.apply_async(
                (parent_id,), countdown=MERGE_LOOKAHEAD - 5, retry=True, retry_policy=PUBLISH_RETRY
            )
        except Exception as exc:  # the sweep enqueues the rows when due
            log.warning("broker unavailable, merge %s left to the sweep: %s", parent_id, exc)
    return count


def start_merge_walk(parent_id: int) -> None:
    """Start enqueueing a merge's rows: in a worker (one message from the request),
    or here when tasks run eagerly or the broker is down (then the sweep enqueues
    them later)."""
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        enqueue_merge(parent_id)
        return
    try:
        enqueue_merge_task.apply_async((parent_id,), retry=True, retry_policy=PUBLISH_RETRY)
    except Exception as exc:  # kombu raises OperationalError, redis-py its own errors
        log.warning("broker unavailable, merge %s left to the sweep: %s", parent_id, exc)


def broker_backlog() -> int | None:
    """How many tasks wait in the broker's queue, not yet taken by a worker; None when
    that cannot be read (no broker, or it is down)."""
    app = execute_run_task.app
    if app.conf.task_always_eager:
        return None
    try:
        with app.connection_for_read() as conn:
            # Not passive: with Redis a queue no worker has bound yet is "not found"
            # rather than empty; declaring it changes nothing in Redis.
            declared = conn.default_channel.queue_declare(
                queue=app.conf.task_default_queue, durable=True, auto_delete=False
            )
            return int(declared.message_count)
    except Exception as exc:  # kombu and redis-py raise their own errors
        log.warning("could not read the broker's queue length: %s", exc)
        return None


def sweep(now=None) -> dict[str, int]:
    """Re-enqueue waiting runs whose task may be lost (never enqueued, or due for longer
    than the grace period), and mark runs still sending after ``KILN_RUN_STUCK_SECONDS``
    unknown: their worker died, and the message may have gone out. A stuck time longer
    than Celery's hard time limit (queries/checks.py) means no worker can still be
    sending them."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.KILN_SWEEP_GRACE_SECONDS)
    waiting = QueryRun.objects.filter(status__in=WAITING)
    # Never handed to the broker (it was down): certainly not in its queue.
    never = waiting.filter(enqueued_at__isnull=True, next_attempt_at__lte=now)
    enqueued = sum(enqueue(run_id) for run_id in never.values_list("pk", flat=True))
    # Scheduled sends coming within reach of an ETA, or due with their task perhaps lost.
    enqueued += enqueue_scheduled(now)
    # Overdue: the task may be lost (Redis restarted), or only behind a long backlog.
    # While the queue holds a backlog the workers are still on it, so only as many are
    # enqueued again as bring the queue up to KILN_SWEEP_BATCH, oldest first: a backlog
    # never grows by the sweep's doing, and lost tasks are found once it drains.
    room = settings.KILN_SWEEP_BATCH - (broker_backlog() or 0)
    if room > 0:
        overdue = waiting.filter(
            next_attempt_at__lte=now - grace, enqueued_at__lte=now - grace
        ).order_by("next_attempt_at", "pk")
        ids = list(overdue.values_list("pk", flat=True)[:room])
        enqueued += sum(enqueue(run_id) for run_id in ids)
    stuck_before = now - timedelta(seconds=settings.KILN_RUN_STUCK_SECONDS)
    # A merge's parent is sending while its rows are: it sends nothing and never sticks.
    stuck_runs = QueryRun.objects.filter(
        status=RunStatus.SENDING, started_at__lt=stuck_before, merge_total__isnull=True
    )
    merges = set(stuck_runs.filter(parent__isnull=False).values_list("parent_id", flat=True))
    stuck = stuck_runs.update(
        status=RunStatus.UNKNOWN,
        error=(
            "The worker stopped while running the query; its action may or may not have been done."
        ),
        finished_at=now,
    )
    for parent_id in merges:
        settle_merge(parent_id)
    return {"enqueued": enqueued, "unknown": stuck}
