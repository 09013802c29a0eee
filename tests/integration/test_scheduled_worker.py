"""Scheduled sends with a real worker process on a real Redis: a run scheduled a few
seconds ahead arrives at its time even when its worker is restarted (SIGTERM, or
SIGKILL) in between, exactly once; one cancelled before its time never arrives, though
its ETA task fires."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from queries.models import ApiToken, QueryRun
from tests.support.apps import make_app, welcome_inputs

pytestmark = pytest.mark.redis

#: How late a scheduled message may arrive: a worker start, the ETA's own precision.
ON_TIME = 3.0


@pytest.fixture
def scheduled(client, team, smtp_server):
    """A function scheduling a run ``seconds`` ahead through the API: (run id, when, as
    time.monotonic() will read it)."""
    app, query = make_app(team.workspace, smtp_server.port)
    key = ApiToken.issue(team.teammate)[1]

    def schedule(seconds: float) -> tuple[int, float]:
        query.send_at = (timezone.now() + timedelta(seconds=seconds)).isoformat()
        query.save()
        due = time.monotonic() + seconds
        response = client.post(
            f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
            json.dumps({"inputs": welcome_inputs()}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 202, response.json()
        assert response.json()["status"] == "scheduled"
        return response.json()["id"], due

    schedule.key = key
    return schedule


def arrival(smtp_server, timeout: float = 20) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if smtp_server.received:
            return time.monotonic()
        time.sleep(0.02)
    return None


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_a_scheduled_run_arrives_on_time_after_a_worker_restart(
    how, celery_worker, smtp_server, scheduled
):
    run_id, due = scheduled(6)
    time.sleep(2)
    assert QueryRun.objects.get(pk=run_id).status == "scheduled"
    if how == "sigterm":
        celery_worker.stop()
    else:
        celery_worker.process.kill()
        celery_worker.process.wait(10)
    celery_worker.start()
    arrived = arrival(smtp_server)
    assert arrived is not None, celery_worker.output()
    print(f"{how}: arrived {arrived - due:+.2f} s from its time")
    assert due - 0.5 <= arrived <= due + ON_TIME, (arrived - due, celery_worker.output())
    run = QueryRun.objects.get(pk=run_id).wait(5)
    assert (run.status, run.attempts) == ("sent", 1)
    # The ETA task and the one enqueued again at start: exactly one message.
    time.sleep(1)
    assert len(smtp_server.received) == 1
    assert smtp_server.handler.transactions == 1


def test_a_cancelled_scheduled_run_never_reaches_the_server(
    client, celery_worker, smtp_server, scheduled
):
    run_id, due = scheduled(3)
    response = client.post(
        f"/api/v1/runs/{run_id}/cancel", headers={"Authorization": f"Bearer {scheduled.key}"}
    )
    assert response.json()["status"] == "cancelled"
    time.sleep(max(due - time.monotonic(), 0) + 1.5)
    assert "not claimed" in celery_worker.output()  # its ETA task fired, and did nothing
    assert smtp_server.received == []
    assert smtp_server.handler.transactions == 0
    assert QueryRun.objects.get(pk=run_id).status == "cancelled"
