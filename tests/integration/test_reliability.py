"""The delivery state machine with real processes (docs/reliability.md): a worker
stopped with SIGTERM, Redis down, faults before MAIL FROM and after DATA, a worker
killed while sending. A real aiosmtpd server, redis-server and Celery workers."""

from __future__ import annotations

import json
import signal
import time
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from datasources.errors import TransientError
from datasources.plugins.smtp.transport import connection
from queries.models import ApiToken, QueryRun
from queries.outbox import execute_run
from queries.tasks import execute_run_task, sweep
from tests.support.apps import make_app, welcome_inputs
from tests.support.services import CeleryWorker
from tests.support.smtp_server import (
    DROP_AFTER_DATA,
    DROP_BEFORE_MAIL,
    GREETING_421,
    SmtpServer,
    free_port,
)

pytestmark = pytest.mark.redis


@pytest.fixture
def api(client, team):
    key = ApiToken.issue(team.teammate)[1]

    def post(app, email="ann@example.com"):
        response = client.post(
            f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
            json.dumps({"inputs": welcome_inputs(email)}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 202, response.json()
        return response.json()["id"]

    return post


def until(condition, timeout: float = 20, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            return value
        time.sleep(step)
    return value


def status_of(run_id: int) -> str:
    return QueryRun.objects.get(pk=run_id).status


def another_worker(like: CeleryWorker, **env: str) -> CeleryWorker:
    """A second worker process with the first one's settings and ``env`` on top."""
    return CeleryWorker(like.redis_url, like.env["DATABASE_URL"], extra_env=env)


# -- SIGTERM ---------------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_sigterm_finishes_the_current_send_and_takes_no_new_one(
    pool, celery_worker, team, smtp_server, api
):
    if pool != celery_worker.pool:
        celery_worker.stop()
        celery_worker.pool = pool
        celery_worker.start()
    app, _ = make_app(team.workspace, smtp_server.port)
    smtp_server.delay_data(2.0)
    first = api(app, "first@example.com")
    assert until(lambda: smtp_server.handler.transactions == 1), celery_worker.output()
    second = api(app, "second@example.com")

    celery_worker.process.send_signal(signal.SIGTERM)
    assert celery_worker.process.wait(30) == 0, celery_worker.output()

    run = QueryRun.objects.get(pk=first)
    assert run.status == "sent", (run.error, celery_worker.output())
    assert [r.rcpt_tos for r in smtp_server.received] == [["first@example.com"]]
    assert smtp_server.handler.transactions == 1
    waiting = QueryRun.objects.get(pk=second)
    assert (waiting.status, waiting.attempts) == ("queued", 0)

    # The second run's task went back to Redis: the next worker sends it, no sweep.
    smtp_server.delay_data(0)
    celery_worker.start()
    assert QueryRun.objects.get(pk=second).wait(20).status == "sent", celery_worker.output()
    assert [r.rcpt_tos for r in smtp_server.received] == [
        ["first@example.com"],
        ["second@example.com"],
    ]


# -- Redis down ------------------------------------------------------------------------


def test_a_run_posted_while_redis_is_down_is_a_quick_202_then_sent_by_the_sweep(
    celery_worker, redis_server, team, smtp_server, api
):
    app, _ = make_app(team.workspace, smtp_server.port)
    redis_server.stop()
    try:
        started = time.monotonic()
        run_id = api(app)
        elapsed = time.monotonic() - started
        run = QueryRun.objects.get(pk=run_id)
        assert (run.status, run.enqueued_at) == ("queued", None)
    finally:
        redis_server.start()
    # One refused connection, one retry 0.1 s later: well under a second (not the
    # seconds a default retry policy waits, and never the minutes of an endless one).
    assert elapsed < 1.0
    celery_worker.wait_ready()
    started = time.monotonic()
    api(app, "up@example.com")
    up = time.monotonic() - started
    print(f"POST answered 202 in {elapsed * 1000:.0f} ms with Redis down, {up * 1000:.0f} ms up")
    # Celery beat's sweep, every second here, enqueues the run once Redis is back.
    beat = another_worker(celery_worker, KILN_SWEEP_EVERY_SECONDS="1")
    beat.command = "beat"
    beat.start()
    try:
        run = QueryRun.objects.get(pk=run_id).wait(30)
    finally:
        beat.stop()
    assert run.status == "sent", (run.error, celery_worker.output(), beat.output())
    assert run.attempts == 1
    assert sorted(r.rcpt_tos[0] for r in smtp_server.wait_for(2)) == [
        "ann@example.com",
        "up@example.com",
    ]


# -- cancel -----------------------------------------------------------------------------


def test_a_worker_never_sends_a_cancelled_run(
    celery_worker, redis_server, client, team, smtp_server, api
):
    app, _ = make_app(team.workspace, smtp_server.port)
    connections = smtp_server.handler.connections  # aiosmtpd's own check that it listens
    redis_server.stop()  # the run stays queued, with no task, until it is cancelled
    try:
        run_id = api(app)
    finally:
        redis_server.start()
    celery_worker.wait_ready()
    key = ApiToken.issue(team.teammate)[1]
    response = client.post(
        f"/api/v1/runs/{run_id}/cancel", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.json()["status"] == "cancelled"
    # The sweep leaves it alone; a task for it anyway finds nothing to claim.
    assert sweep() == {"enqueued": 0, "unknown": 0}
    execute_run_task.apply_async((run_id,))
    assert until(lambda: "not claimed" in celery_worker.output(), timeout=10)
    assert status_of(run_id) == "cancelled"
    assert smtp_server.handler.connections == connections
    assert smtp_server.received == []


# -- faults before MAIL FROM: retried ---------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (GREETING_421, "421 4.3.2 Service not available"),
        (DROP_BEFORE_MAIL, "closed the connection while sending the sender (MAIL FROM)"),
    ],
)
def test_a_fault_before_mail_from_is_retried_then_sent(
    fault, said, celery_worker, team, smtp_server, api
):
    app, _ = make_app(team.workspace, smtp_server.port)
    smtp_server.fault(fault)
    before = smtp_server.handler.connections  # aiosmtpd's own check that it listens
    run_id = api(app)
    run = QueryRun.objects.get(pk=run_id).wait(20)
    assert run.status == "sent", (run.error, celery_worker.output())
    assert run.attempts == 2
    (failure,) = run.failures
    assert failure["type"] == "TransientError"
    assert said in failure["message"]
    assert smtp_server.handler.connections - before == 2
    assert len(smtp_server.received) == 1


def test_a_421_greeting_is_reported_with_the_servers_text(smtp_server):
    smtp_server.fault(GREETING_421)
    with pytest.raises(TransientError) as caught, connection(smtp_server.settings()):
        pass
    assert "421 4.3.2 Service not available" in caught.value.message
    assert "greeting" in caught.value.message


def test_a_refused_connection_is_retried_until_the_server_listens(celery_worker, team, certs, api):
    port = free_port()
    app, _ = make_app(team.workspace, port)
    run_id = api(app)
    assert until(lambda: status_of(run_id) == "scheduled"), celery_worker.output()
    server = SmtpServer(port=port).start()
    try:
        run = QueryRun.objects.get(pk=run_id).wait(20)
        assert run.status == "sent", (run.error, celery_worker.output())
        assert run.attempts >= 2
        assert "Connection refused" in run.failures[0]["message"]
        assert len(server.received) == 1
    finally:
        server.stop()


# -- after DATA: unknown, never sent again ----------------------------------------------


def test_a_connection_dropped_after_data_is_unknown_and_never_sent_again(
    celery_worker, team, smtp_server, api, settings
):
    app, _ = make_app(team.workspace, smtp_server.port)
    smtp_server.fault(DROP_AFTER_DATA)
    run_id = api(app)
    run = QueryRun.objects.get(pk=run_id).wait(20)
    assert run.status == "unknown", (run.error, celery_worker.output())
    assert "may or may not have been delivered" in run.error
    assert run.attempts == 1

    # A redelivered task and a sweep, even one that thinks every run is overdue.
    execute_run_task.apply_async((run_id,))
    settings.KILN_SWEEP_GRACE_SECONDS = 0
    settings.KILN_RUN_STUCK_SECONDS = 0
    assert sweep(now=timezone.now() + timedelta(hours=1)) == {"enqueued": 0, "unknown": 0}
    assert until(lambda: "not claimed" in celery_worker.output(), timeout=10)
    assert status_of(run_id) == "unknown"
    assert smtp_server.handler.transactions == 1
    assert len(smtp_server.received) == 1


# -- a worker killed while sending ------------------------------------------------------


def test_a_run_whose_worker_died_while_sending_becomes_unknown_not_resent(
    celery_worker, team, smtp_server, api, settings
):
    app, _ = make_app(team.workspace, smtp_server.port)
    smtp_server.delay_data(60)
    run_id = api(app)
    assert until(lambda: smtp_server.handler.transactions == 1), celery_worker.output()
    celery_worker.process.send_signal(signal.SIGKILL)
    celery_worker.process.wait(10)
    assert status_of(run_id) == "sending"

    # Redis hands the unacknowledged task to the next worker once its visibility
    # timeout has passed: the claim finds the run sending and does nothing.
    smtp_server.delay_data(0)
    second = another_worker(
        celery_worker, KILN_BROKER_VISIBILITY_TIMEOUT="1", KILN_BROKER_RESTORE_EVERY_SECONDS="1"
    ).start()
    try:
        redelivered = until(lambda: "not claimed" in second.output(), timeout=30)
        assert redelivered, second.output()
        assert status_of(run_id) == "sending"

        # The sweep: not before KILN_RUN_STUCK_SECONDS, then unknown.
        settings.KILN_RUN_STUCK_SECONDS = 900
        assert sweep()["unknown"] == 0
        QueryRun.objects.filter(pk=run_id).update(
            started_at=timezone.now() - timedelta(seconds=901)
        )
        assert sweep() == {"enqueued": 0, "unknown": 1}
        run = QueryRun.objects.get(pk=run_id)
        assert run.status == "unknown"
        assert "worker stopped" in run.error
        assert run.finished_at is not None
        assert sweep() == {"enqueued": 0, "unknown": 0}
        time.sleep(1)
    finally:
        second.stop()
    assert smtp_server.handler.transactions == 1
    assert smtp_server.received == []
    assert status_of(run_id) == "unknown"


# -- Celery's time limits during a send ---------------------------------------------------


def test_a_send_cut_by_the_time_limits_is_unknown_and_not_resent(
    celery_worker, team, smtp_server, api
):
    """A prefork worker (the pool that enforces time limits) with a 2 s soft and 4 s
    hard limit, and a server that holds the message for 30 s. The limits travel in the
    task's message, from the process that enqueues it: this one sets them too."""
    celery_worker.stop()
    worker = another_worker(celery_worker, KILN_TASK_SOFT_TIME_LIMIT="2", KILN_TASK_TIME_LIMIT="4")
    worker.pool = "prefork"
    worker.start()
    conf = execute_run_task.app.conf
    limits = (
        execute_run_task.soft_time_limit,
        execute_run_task.time_limit,
        conf.task_soft_time_limit,
        conf.task_time_limit,
    )
    execute_run_task.soft_time_limit, execute_run_task.time_limit = 2, 4
    conf.task_soft_time_limit, conf.task_time_limit = 2, 4
    # Celery keeps a task's options from its first enqueue in this process: forget them.
    execute_run_task._exec_options = None
    try:
        app, _ = make_app(team.workspace, smtp_server.port)
        smtp_server.delay_data(30)
        run_id = api(app)
        assert until(lambda: "Soft time limit (2s) exceeded" in worker.output()), worker.output()
        run = QueryRun.objects.get(pk=run_id).wait(10)
        time.sleep(1)
    finally:
        execute_run_task.soft_time_limit, execute_run_task.time_limit = limits[:2]
        conf.task_soft_time_limit, conf.task_time_limit = limits[2:]
        execute_run_task._exec_options = None
        worker.stop()
    assert smtp_server.handler.transactions == 1
    assert smtp_server.received == []
    assert run.status == "unknown", (run.status, run.error)


@pytest.mark.django_db
def test_the_soft_time_limit_after_data_leaves_the_run_unknown(client, team, smtp_server):
    app, _ = make_app(team.workspace, smtp_server.port)
    key = ApiToken.issue(team.teammate)[1]
    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": welcome_inputs()}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    run_id = response.json()["id"]  # queued: on_commit never fires in this test
    smtp_server.delay_data(3)

    def soft_limit(signum, frame):
        raise SoftTimeLimitExceeded()

    # What Celery's prefork pool does when the soft limit passes: a signal whose
    # handler raises in the task. Here it comes while the server holds the message.
    previous = signal.signal(signal.SIGALRM, soft_limit)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        execute_run(run_id)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert smtp_server.handler.transactions == 1
    assert status_of(run_id) == "unknown"
