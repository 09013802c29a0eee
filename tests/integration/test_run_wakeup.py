"""Waiting for a run is woken by its end (queries.notify), with a real worker and
Redis; with Redis gone, waiting falls back to reading the run again."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time

import pytest
import redis
from django.db import connection

from builder.demo import create_demo_app
from queries import notify
from queries.models import ApiToken, QueryRun, RunStatus
from tests.support.apps import mailer, make_app, welcome_inputs
from tests.support.services import RedisServer, use_broker

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

WOKEN = "waiter woken by its end"


@contextlib.contextmanager
def held_until_waited_for(smtp_server, redis_url: str):
    """The SMTP server answers no DATA until someone subscribes to the channel of the
    run that arrives (checked in Redis itself): the run ends only after its waiter
    listens, so the wake-up path, not the first read, must see its end."""
    client = redis.Redis.from_url(redis_url)
    run_ids: list[int] = []
    smtp_server.handler.lock.acquire()

    def release_when_waited_for():
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                if run_ids:
                    counts = dict(client.pubsub_numsub(notify.channel(run_ids[0])))
                    if counts.get(notify.channel(run_ids[0]).encode()):
                        return
                time.sleep(0.01)
        finally:
            smtp_server.handler.lock.release()

    thread = threading.Thread(target=release_when_waited_for)
    thread.start()
    try:
        yield run_ids
    finally:
        thread.join(25)


@pytest.fixture
def contact(team, smtp_server):
    return make_app(team.workspace, smtp_server.port)


@pytest.fixture
def token(team):
    return ApiToken.issue(team.teammate)[1]


def test_an_api_wait_is_woken_by_the_workers_end(
    client, celery_worker, redis_server, contact, token, smtp_server, caplog
):
    app, _ = contact
    auth = {"Authorization": f"Bearer {token}"}
    with held_until_waited_for(smtp_server, redis_server.url) as run_ids:
        created = client.post(
            f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
            json.dumps({"inputs": welcome_inputs()}),
            content_type="application/json",
            headers=auth,
        )
        assert created.status_code == 202
        run_ids.append(created.json()["id"])
        with caplog.at_level(logging.DEBUG, logger="queries.notify"):
            body = client.get(f"/api/v1/runs/{run_ids[0]}?wait=20", headers=auth).json()
    assert body["status"] == "sent", (body, celery_worker.output())
    assert any(WOKEN in r.getMessage() for r in caplog.records), caplog.text


def test_a_page_poll_is_woken_by_the_workers_end(
    client, celery_worker, redis_server, team, smtp_server, settings, caplog
):
    settings.KILN_VIEWER_CLICK_WAIT_SECONDS = 0  # straight to the poller
    create_demo_app(team.workspace, mailer(team.workspace, smtp_server.port), team.owner)
    client.force_login(team.viewer)
    form = {
        "name": "Ann",
        "email": "ann@example.com",
        "message": "Hi",
        "widget": "form1",
        "event": "submit",
    }
    with held_until_waited_for(smtp_server, redis_server.url) as run_ids:
        event = client.post("/apps/contact-us/contact/events", form)
        assert "kiln-poller" in event.text, event.text
        run_ids.append(QueryRun.objects.get().pk)
        with caplog.at_level(logging.DEBUG, logger="queries.notify"):
            poll = client.post(
                f"/apps/contact-us/contact/runs/{run_ids[0]}/poll",
                {**form, "path": "submit-0", "trigger": "form1"},
            )
    assert "kiln-toast-success" in poll.text, (poll.text, celery_worker.output())
    assert any(WOKEN in r.getMessage() for r in caplog.records), caplog.text


def test_a_wait_with_redis_unreachable_reads_the_run_again(contact, team, caplog):
    dead = RedisServer().start()
    dead.stop()
    previous = use_broker(dead.url, eager=False)
    try:
        run = _stored_run(contact[1], team)
        with caplog.at_level(logging.WARNING, logger="queries.notify"):
            waited = QueryRun.objects.get(pk=run.pk).wait(0.3)
    finally:
        use_broker(previous[0], eager=previous[1])
    assert waited.status == RunStatus.QUEUED
    assert "waiting for run" in caplog.text and "by reading it again" in caplog.text


def test_redis_stopped_during_a_wait_falls_back_to_reading_the_run(contact, team, caplog):
    server = RedisServer().start()
    previous = use_broker(server.url, eager=False)
    result: dict = {}
    try:
        run = _stored_run(contact[1], team)

        def wait():
            try:
                result["run"] = QueryRun.objects.get(pk=run.pk).wait(20)
            finally:
                connection.close()  # this thread's own, or the test database stays in use

        with caplog.at_level(logging.WARNING, logger="queries.notify"):
            waiter = threading.Thread(target=wait)
            waiter.start()
            client = redis.Redis.from_url(server.url)
            channel = notify.channel(run.pk)
            while not dict(client.pubsub_numsub(channel)).get(channel.encode()):
                time.sleep(0.01)
            server.stop()
            # The end is recorded with Redis gone: nobody is told, the waiter must read.
            QueryRun.objects.filter(pk=run.pk).update(status=RunStatus.SENT)
            notify.notify_finished(run.pk)  # logged, never raised
            waiter.join(20)
    finally:
        use_broker(previous[0], eager=previous[1])
        server.stop()
    assert result["run"].status == RunStatus.SENT
    assert "lost the channel" in caplog.text or "reading it again" in caplog.text


def test_the_worker_side_wakes_a_subscribed_waiter(redis_server, contact, team):
    previous = use_broker(redis_server.url, eager=False)
    try:
        run = _stored_run(contact[1], team)
        with notify.RunWaiter(run.pk) as waiter:
            assert waiter.subscribed
            notify.notify_finished(run.pk)
            assert waiter.wait(10) is True
    finally:
        use_broker(previous[0], eager=previous[1])


def test_with_eager_tasks_nobody_subscribes(contact, team):
    # The embedded default: a run started by this request has ended already.
    run = _stored_run(contact[1], team)
    with notify.RunWaiter(run.pk) as waiter:
        assert not waiter.subscribed
        assert waiter.wait(0.01) is False


def _stored_run(query, team) -> QueryRun:
    """A queued run that no worker will take (none runs in these tests)."""
    return QueryRun.objects.create(
        workspace=team.workspace, query=query, datasource=query.datasource, action="send"
    )
