"""The Celery side of the outbox: the tasks, handing a run to the broker, and the sweep
that re-enqueues runs whose task may have been lost."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from queries.models import WAITING, QueryRun, RunStatus
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


def sweep(now=None) -> dict[str, int]:
    """Re-enqueue waiting runs whose task may be lost (never enqueued, or due for longer
    than the grace period), and mark runs still sending after ``KILN_RUN_STUCK_SECONDS``
    unknown: their worker died, and the message may have gone out. A stuck time longer
    than Celery's hard time limit (queries/checks.py) means no worker can still be
    sending them."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.KILN_SWEEP_GRACE_SECONDS)
    lost = QueryRun.objects.filter(status__in=WAITING).filter(
        Q(enqueued_at__isnull=True, next_attempt_at__lte=now)
        | Q(next_attempt_at__lte=now - grace, enqueued_at__lte=now - grace)
    )
    enqueued = sum(enqueue(run_id) for run_id in lost.values_list("pk", flat=True))
    stuck_before = now - timedelta(seconds=settings.KILN_RUN_STUCK_SECONDS)
    stuck = QueryRun.objects.filter(status=RunStatus.SENDING, started_at__lt=stuck_before).update(
        status=RunStatus.UNKNOWN,
        error=(
            "The worker stopped while running the query; its action may or may not have been done."
        ),
        finished_at=now,
    )
    return {"enqueued": enqueued, "unknown": stuck}
