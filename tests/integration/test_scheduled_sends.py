"""Scheduled sends without a worker: a query's send_at (bound or typed) stores the run
scheduled, the API shows it, a past or garbage send_at is a 400 naming send_at, a
cancelled scheduled run is never sent, the retry deadline counts from send_at, and the
sweep enqueues a scheduled run once it is due.

No real commit here (the test's transaction), so no task is enqueued: the tests move
the run's due time themselves, as the clock would."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from queries.models import ApiToken, QueryRun
from queries.outbox import execute_run
from queries.tasks import sweep
from tests.support.apps import make_app, welcome_inputs
from tests.support.smtp_server import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def contact(team, smtp_server):
    return make_app(team.workspace, smtp_server.port)


def post_run(client, app, user, **extra):
    return client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": welcome_inputs(**extra)}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {ApiToken.issue(user)[1]}"},
    )


def in_a_minute() -> str:
    return (timezone.now() + timedelta(minutes=1)).isoformat()


def come_due(run_id: int) -> None:
    """The clock reaches the run's send_at."""
    past = timezone.now() - timedelta(seconds=1)
    QueryRun.objects.filter(pk=run_id).update(next_attempt_at=past, send_at=past)


def test_a_run_with_a_future_send_at_is_stored_scheduled(client, team, contact, smtp_server):
    app, query = contact
    when = timezone.now() + timedelta(hours=2)
    query.send_at = when.isoformat()
    query.save()
    response = post_run(client, app, team.teammate)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["status"], body["attempts"]) == ("scheduled", 0)
    assert body["send_at"] == when.isoformat()
    run = QueryRun.objects.get(pk=body["id"])
    assert run.next_attempt_at == when == run.send_at
    assert run.scheduled_later and not run.retrying
    # A task arriving early (an ETA task redelivered, a sweep) finds nothing due.
    assert execute_run(run.pk) is None
    assert smtp_server.received == []


def test_send_at_is_bound_from_the_page(client, team, contact, smtp_server):
    app, query = contact
    query.send_at = "<< form1.data.when >>"
    query.save()
    when = timezone.now() + timedelta(minutes=5)
    inputs = welcome_inputs()
    inputs["form1"]["data"]["when"] = when.isoformat()
    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": inputs}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {ApiToken.issue(team.teammate)[1]}"},
    )
    assert response.json()["status"] == "scheduled"
    assert QueryRun.objects.get(pk=response.json()["id"]).send_at == when


def test_an_empty_bound_send_at_sends_now(client, team, contact):
    app, query = contact
    query.send_at = "<< cc_input.value >>"  # empty in welcome_inputs
    query.save()
    body = post_run(client, app, team.teammate).json()
    assert (body["status"], body["send_at"]) == ("queued", None)


@pytest.mark.parametrize(
    ("send_at", "said"),
    [
        ("2020-01-01T10:00:00Z", "is in the past"),
        ("next tuesday", "is not a date and time"),
        ("2999-01-01T10:00:00Z", "days ahead"),
        ("<< nothing_here.x >>", "nothing_here"),
    ],
)
def test_a_bad_send_at_is_a_400_naming_send_at_and_stores_nothing(
    client, team, contact, send_at, said
):
    app, query = contact
    query.send_at = send_at
    query.save()
    response = post_run(client, app, team.teammate)
    assert response.status_code == 400, response.json()
    assert response.json()["field"] == "send_at"
    assert said in response.json()["error"]
    assert not QueryRun.objects.exists()


def test_a_cancelled_scheduled_run_is_never_sent(client, team, contact, smtp_server):
    app, query = contact
    query.send_at = in_a_minute()
    query.save()
    run_id = post_run(client, app, team.teammate).json()["id"]
    response = client.post(
        f"/api/v1/runs/{run_id}/cancel",
        headers={"Authorization": f"Bearer {ApiToken.issue(team.teammate)[1]}"},
    )
    assert response.json()["status"] == "cancelled"
    come_due(run_id)
    # Its time comes: neither its ETA task nor the sweep sends it.
    assert execute_run(run_id) is None
    assert sweep()["enqueued"] == 0
    assert smtp_server.received == []
    assert QueryRun.objects.get(pk=run_id).status == "cancelled"


def test_a_scheduled_run_is_sent_once_due(client, team, contact, smtp_server):
    app, query = contact
    query.send_at = in_a_minute()
    query.save()
    run_id = post_run(client, app, team.teammate).json()["id"]
    come_due(run_id)
    assert execute_run(run_id).status == "sent"
    assert [r.rcpt_tos for r in smtp_server.wait_for(1)] == [["ann@example.com"]]
    assert execute_run(run_id) is None  # a second task: nothing to claim


def test_the_retry_deadline_counts_from_send_at(team, settings):
    """Scheduled an hour ahead with a 60 s budget: its first failure is retried, not
    given up because an hour has passed since the run was created."""
    settings.KILN_RUN_RETRY_BASE_SECONDS = 1
    app, query = make_app(team.workspace, free_port())  # nothing listens: transient
    created = QueryRun.objects.create(
        workspace=team.workspace,
        query=query,
        datasource=query.datasource,
        action=query.action,
        fields={"from": "a@kiln.test", "to": "b@example.com", "subject": "s", "body": "b"},
        status="scheduled",
        timeout_seconds=60,
    )
    hour_ago = timezone.now() - timedelta(hours=1)
    now = timezone.now()
    QueryRun.objects.filter(pk=created.pk).update(
        created_at=hour_ago, send_at=now, next_attempt_at=now
    )
    outcome = execute_run(created.pk)
    run = QueryRun.objects.get(pk=created.pk)
    assert (outcome.status, run.status, run.attempts) == ("scheduled", "scheduled", 1), run.error
    assert run.retrying
    # Without a send_at the same run is past its budget and gives up.
    QueryRun.objects.filter(pk=created.pk).update(send_at=None, next_attempt_at=now)
    assert execute_run(created.pk).status == "failed"
    assert "Gave up after 2 attempt(s)" in QueryRun.objects.get(pk=created.pk).error


def test_the_sweep_sends_a_scheduled_run_once_due_with_no_task(client, team, contact, smtp_server):
    """Eagerly (no broker) the run is not handed over before it is due: the sweep sends
    it once due, as it does with retries."""
    app, query = contact
    query.send_at = in_a_minute()
    query.save()
    run_id = post_run(client, app, team.teammate).json()["id"]
    assert sweep()["enqueued"] == 0  # not due yet
    assert QueryRun.objects.get(pk=run_id).status == "scheduled"
    come_due(run_id)
    assert sweep()["enqueued"] == 1
    assert QueryRun.objects.get(pk=run_id).status == "sent"
    assert len(smtp_server.wait_for(1)) == 1


def test_the_api_shows_send_at_only_to_whom_may_read_the_run(client, team, contact):
    app, query = contact
    query.send_at = in_a_minute()
    query.save()
    run_id = post_run(client, app, team.teammate).json()["id"]
    for user, code in ((team.outsider, 404), (team.viewer, 404), (team.teammate, 200)):
        response = client.get(
            f"/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {ApiToken.issue(user)[1]}"}
        )
        assert response.status_code == code
    assert response.json()["send_at"]


def test_the_sweep_sends_again_a_due_run_whose_eta_task_may_be_lost(
    client, team, contact, smtp_server
):
    """Enqueued with an ETA before it came due (its worker may have died with the task):
    once due, the sweep enqueues it again, once."""
    app, query = contact
    query.send_at = in_a_minute()
    query.save()
    run_id = post_run(client, app, team.teammate).json()["id"]
    come_due(run_id)
    QueryRun.objects.filter(pk=run_id).update(enqueued_at=timezone.now() - timedelta(minutes=1))
    assert sweep()["enqueued"] == 1
    assert QueryRun.objects.get(pk=run_id).status == "sent"
    assert sweep()["enqueued"] == 0
    assert len(smtp_server.wait_for(1)) == 1


def test_send_at_may_read_a_query(client, team, contact):
    """The queries send_at reads are loaded for it, as those the fields read are."""
    app, query = contact
    query.send_at = "<< '' if send_welcome.status is none else 'later' >>"
    query.save()
    body = post_run(client, app, team.teammate).json()
    assert (body["status"], body["send_at"]) == ("queued", None), body
