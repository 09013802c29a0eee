from __future__ import annotations

from celery import shared_task

from queries.execution import enqueue, execute_run, sweep


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
