"""Scheduled runs and sandbox mode under attack: another workspace's scheduled run is a
404 to read, poll and cancel (and is still sent at its time); a viewer cannot reach
someone else's scheduled run; sandbox mode keeps the password out of the run and the
catch-all's header out of every real recipient's copy; a viewer cannot turn sandbox
mode off."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from builder.publishing import publish
from datasources.models import Datasource
from queries.models import ApiToken, QueryRun
from queries.outbox import execute_run
from tests.integration.test_datasource_views import form_data
from tests.support.apps import make_app, welcome_inputs

pytestmark = pytest.mark.django_db

PASSWORD = "Sup3r-Secret-Pw!"


def bearer(user) -> dict:
    return {"Authorization": f"Bearer {ApiToken.issue(user)[1]}"}


@pytest.fixture
def scheduled(client, team, smtp_server):
    app, query = make_app(team.workspace, smtp_server.port)
    query.send_at = (timezone.now() + timedelta(minutes=5)).isoformat()
    query.run_on_page_load = True  # so that a poll with no action path is a real one
    query.save()
    publish(app, team.owner)
    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": welcome_inputs()}),
        content_type="application/json",
        headers=bearer(team.teammate),
    )
    assert response.json()["status"] == "scheduled"
    return app, response.json()["id"]


def test_another_workspace_cannot_read_poll_or_cancel_a_scheduled_run(
    client, team, scheduled, smtp_server
):
    app, run_id = scheduled
    outsider = team.outsider
    assert client.get(f"/api/v1/runs/{run_id}", headers=bearer(outsider)).status_code == 404
    cancel = client.post(f"/api/v1/runs/{run_id}/cancel", headers=bearer(outsider))
    assert cancel.status_code == 404
    client.force_login(outsider)
    poll = client.post(f"/apps/{app.slug}/home/runs/{run_id}/poll", {"path": "", "trigger": ""})
    assert poll.status_code == 404
    client.force_login(team.teammate)  # its creator: the same URL answers
    poll = client.post(f"/apps/{app.slug}/home/runs/{run_id}/poll", {"path": "", "trigger": ""})
    assert poll.status_code == 200 and "Scheduled for" in poll.text
    # Untouched: it is still sent at its time.
    due = timezone.now() - timedelta(seconds=1)
    QueryRun.objects.filter(pk=run_id).update(next_attempt_at=due, send_at=due)
    assert execute_run(run_id).status == "sent"
    assert len(smtp_server.wait_for(1)) == 1


def test_a_viewer_cannot_reach_someone_elses_scheduled_run(client, team, scheduled):
    _, run_id = scheduled
    assert client.get(f"/api/v1/runs/{run_id}", headers=bearer(team.viewer)).status_code == 404
    response = client.post(f"/api/v1/runs/{run_id}/cancel", headers=bearer(team.viewer))
    assert response.status_code == 404
    assert QueryRun.objects.get(pk=run_id).status == "scheduled"


def test_sandbox_mode_keeps_the_password_out_of_the_run(client, team, smtp_server):
    app, query = make_app(team.workspace, smtp_server.port)
    datasource = query.datasource
    datasource.config = {
        **datasource.config,
        "sandbox": "catchall",
        "sandbox_address": "qa@kiln.test",
    }
    datasource.secret = PASSWORD
    datasource.save()
    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": welcome_inputs()}),
        content_type="application/json",
        headers=bearer(team.teammate),
    )
    run_id = response.json()["id"]
    execute_run(run_id)
    run = QueryRun.objects.get(pk=run_id)
    stored = json.dumps([run.payload_meta, run.details, run.fields, run.error])
    assert PASSWORD not in stored and PASSWORD.encode() not in bytes(run.payload)
    assert PASSWORD not in client.get(f"/api/v1/runs/{run_id}", headers=bearer(team.teammate)).text


def test_without_sandbox_no_recipient_sees_the_original_recipients_header(
    client, team, smtp_server
):
    app, query = make_app(team.workspace, smtp_server.port)
    query.fields = {**query.fields, "bcc": "hidden@example.com"}
    query.save()
    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": welcome_inputs()}),
        content_type="application/json",
        headers=bearer(team.teammate),
    )
    execute_run(response.json()["id"])
    (received,) = smtp_server.wait_for(1)
    assert received.message["X-Kiln-Sandbox-Original-Recipients"] is None
    assert b"hidden@example.com" not in received.data


def test_a_viewer_or_outsider_cannot_change_sandbox_mode(client, team):
    datasource = Datasource.objects.create(
        workspace=team.workspace,
        name="Mailer",
        kind="smtp",
        config={
            "host": "127.0.0.1",
            "port": 587,
            "security": "starttls",
            "auth": "none",
            "sandbox": "devmailbox",
        },
    )
    edit = reverse("datasources:edit", args=[team.workspace.slug, datasource.pk])
    client.force_login(team.viewer)
    assert client.post(edit, form_data(auth="none", sandbox="off")).status_code == 403
    client.force_login(team.outsider)
    assert client.post(edit, form_data(auth="none", sandbox="off")).status_code == 404
    datasource.refresh_from_db()
    assert datasource.config["sandbox"] == "devmailbox"
