"""The outbox with a real redis-server and a real Celery worker process."""

from __future__ import annotations

import json
import time

import pytest
from django.core.management import call_command

from queries.models import ApiToken, QueryRun
from queries.tasks import execute_run_task
from tests.support.apps import make_app, welcome_inputs

pytestmark = pytest.mark.redis


def wait_for_run(run_id: int, timeout: float = 20) -> QueryRun:
    return QueryRun.objects.get(pk=run_id).wait(timeout)


@pytest.fixture
def contact(team, smtp_server):
    return make_app(team.workspace, smtp_server.port)


@pytest.fixture
def api(client, team):
    key = ApiToken.issue(team.teammate)[1]

    def post(app, inputs=None):
        return client.post(
            f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
            json.dumps({"inputs": inputs or welcome_inputs()}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )

    def get(run_id, wait=0):
        return client.get(
            f"/api/v1/runs/{run_id}?wait={wait}", headers={"Authorization": f"Bearer {key}"}
        )

    post.get = get
    return post


def test_a_run_posted_to_the_api_is_sent_by_the_worker(celery_worker, contact, api, smtp_server):
    app, _ = contact
    response = api(app)
    assert response.status_code == 202
    assert response.json()["status"] in ("queued", "sending", "sent")
    body = api.get(response.json()["id"], wait=20).json()
    assert body["status"] == "sent", (body, celery_worker.output())
    assert body["data"] == {"success": True, "message": "Email sent successfully"}
    (received,) = smtp_server.received
    assert received.rcpt_tos == ["ann@example.com"]
    assert received.message["Subject"] == "Welcome, Ann!"


def test_a_task_delivered_twice_sends_once(celery_worker, contact, api, smtp_server):
    app, _ = contact
    run_id = api(app).json()["id"]
    # The same task again, as a broker redelivery would do.
    execute_run_task.apply_async((run_id,))
    execute_run_task.apply_async((run_id,))
    assert wait_for_run(run_id).status == "sent"
    time.sleep(1.5)  # give the duplicates time to be (not) executed
    assert smtp_server.handler.transactions == 1
    assert QueryRun.objects.get(pk=run_id).attempts == 1


def test_a_451_then_250_succeeds_on_a_retry(celery_worker, contact, api, smtp_server):
    app, _ = contact
    smtp_server.reply_to_data("451 4.3.0 Try again later", "250 OK")
    run_id = api(app).json()["id"]
    run = wait_for_run(run_id)
    assert run.status == "sent", (run.error, celery_worker.output())
    assert run.attempts == 2
    assert run.failures[0]["message"].endswith("451 4.3.0 Try again later")
    assert len(smtp_server.received) == 1


def test_a_550_fails_at_once_with_the_server_text(celery_worker, contact, api, smtp_server):
    app, _ = contact
    smtp_server.reply_to_data("550 5.7.1 Relaying denied")
    run = wait_for_run(api(app).json()["id"])
    assert (run.status, run.attempts) == ("failed", 1)
    assert "550 5.7.1 Relaying denied" in run.error
    assert api.get(run.pk).json()["error"] == run.error


def test_redis_down_loses_no_run(celery_worker, redis_server, contact, api, smtp_server):
    app, _ = contact
    redis_server.stop()
    try:
        response = api(app)
        assert response.status_code == 202
        run = QueryRun.objects.get(pk=response.json()["id"])
        assert (run.status, run.enqueued_at) == ("queued", None)
    finally:
        redis_server.start()
    celery_worker.wait_ready()
    call_command("sweep_outbox", stdout=open("/dev/null", "w"))  # noqa: SIM115
    run = wait_for_run(run.pk)
    assert run.status == "sent", (run.error, celery_worker.output())
    assert len(smtp_server.received) == 1
