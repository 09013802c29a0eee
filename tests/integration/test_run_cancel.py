"""Cancelling a run through the run API: who may, which states, and that the outbox
never sends a cancelled run."""

from __future__ import annotations

import json

import pytest

from queries.models import ApiToken, QueryRun
from queries.outbox import execute_run
from tests.support.apps import make_app, welcome_inputs
from workspaces.audit import AuditEvent

# No real commit: the run's task is never enqueued (transaction.on_commit does not fire
# inside the test's transaction), so every run stays queued until the test moves it.
pytestmark = pytest.mark.django_db


@pytest.fixture
def contact(team, smtp_server):
    return make_app(team.workspace, smtp_server.port)


def key_of(user) -> str:
    return ApiToken.issue(user)[1]


def start_run(client, app, user) -> int:
    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": welcome_inputs()}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key_of(user)}"},
    )
    assert response.status_code == 202, response.json()
    return response.json()["id"]


def cancel(client, run_id, user):
    return client.post(
        f"/api/v1/runs/{run_id}/cancel", headers={"Authorization": f"Bearer {key_of(user)}"}
    )


def test_the_creator_cancels_a_queued_run_and_it_is_never_sent(client, team, contact, smtp_server):
    app, _ = contact
    run_id = start_run(client, app, team.viewer)
    response = cancel(client, run_id, team.viewer)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["error"] == "Cancelled by viewer."
    assert body["finished_at"]
    # A task delivered afterwards finds nothing to claim.
    assert execute_run(run_id) is None
    assert smtp_server.received == []
    assert smtp_server.handler.transactions == 0
    assert QueryRun.objects.get(pk=run_id).status == "cancelled"


def test_a_cancel_is_in_the_audit_log(client, team, contact):
    app, _ = contact
    run_id = start_run(client, app, team.viewer)
    cancel(client, run_id, team.teammate)
    entry = AuditEvent.objects.get(action="cancelled")
    assert (entry.actor, entry.target_type) == (team.teammate, "run")
    assert entry.target_label == f"run {run_id} of send_welcome"
    assert entry.detail == {"run": run_id}
    assert entry.workspace == team.workspace


@pytest.mark.parametrize("who", ["owner", "teammate"])
def test_an_editor_or_admin_cancels_another_members_run(client, team, contact, who):
    app, _ = contact
    run_id = start_run(client, app, team.viewer)
    assert cancel(client, run_id, getattr(team, who)).status_code == 200


def test_a_scheduled_run_can_be_cancelled(client, team, contact, smtp_server):
    app, _ = contact
    run_id = start_run(client, app, team.teammate)
    QueryRun.objects.filter(pk=run_id).update(status="scheduled", attempts=1)
    assert cancel(client, run_id, team.teammate).json()["status"] == "cancelled"
    assert execute_run(run_id) is None
    assert smtp_server.received == []


def test_a_viewer_cannot_cancel_someone_elses_run(client, team, contact):
    app, _ = contact
    run_id = start_run(client, app, team.teammate)
    response = cancel(client, run_id, team.viewer)
    assert response.status_code == 404
    assert response.json() == {"error": "No such run."}
    assert QueryRun.objects.get(pk=run_id).status == "queued"


def test_an_outsider_gets_404(client, team, contact):
    app, _ = contact
    run_id = start_run(client, app, team.teammate)
    assert cancel(client, run_id, team.outsider).status_code == 404
    assert cancel(client, 999999, team.teammate).status_code == 404
    assert QueryRun.objects.get(pk=run_id).status == "queued"
    assert not AuditEvent.objects.filter(action="cancelled").exists()


def test_a_sending_run_is_a_409_that_says_so(client, team, contact):
    app, _ = contact
    run_id = start_run(client, app, team.teammate)
    QueryRun.objects.filter(pk=run_id).update(status="sending")
    response = cancel(client, run_id, team.teammate)
    assert response.status_code == 409
    assert response.json()["status"] == "sending"
    assert response.json()["field"] == "status"
    assert "being sent and can no longer be cancelled" in response.json()["error"]
    assert QueryRun.objects.get(pk=run_id).status == "sending"


@pytest.mark.parametrize("status", ["sent", "failed", "unknown", "cancelled"])
def test_a_finished_run_is_a_409_naming_its_status(client, team, contact, status):
    app, _ = contact
    run_id = start_run(client, app, team.teammate)
    QueryRun.objects.filter(pk=run_id).update(status=status)
    response = cancel(client, run_id, team.teammate)
    assert response.status_code == 409
    assert f"already ended ({status})" in response.json()["error"]
    assert QueryRun.objects.get(pk=run_id).status == status


def test_a_sent_run_cannot_be_cancelled_after_the_worker_took_it(client, team, contact):
    app, _ = contact
    run_id = start_run(client, app, team.teammate)
    assert execute_run(run_id).status == "sent"
    assert cancel(client, run_id, team.teammate).status_code == 409


def test_cancel_needs_a_token_and_a_post(client, team, contact):
    app, _ = contact
    run_id = start_run(client, app, team.teammate)
    assert client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 401
    key = key_of(team.teammate)
    response = client.get(
        f"/api/v1/runs/{run_id}/cancel", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 405
    assert QueryRun.objects.get(pk=run_id).status == "queued"
