"""The Celery side of the outbox: the tasks, handing a run to the broker, and the sweep
that re-enqueues runs whose task may have been lost."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from queries.models import WAITING, QueryRun, RunStatus, settle_merge
from queries.outbox import execute_run

log = logging.getLogger(__name__)


@shared_task(name="queries.execute_run", acks_late=True, ignore_result=True)
def execute_run_task(run_id: int) -> str:
    outcome = execute_run(run_id)
    if outcome is None:
        return "skipped"
    if outcome.retry_in is not None and not execute_run_task.request.is_eager:
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
