"""The outbox without a worker: rollback, claims, retries, the sweep, unknown outcomes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from queries.claims import claim
from queries.execution import create_run
from queries.models import QueryRun
from queries.outbox import execute_run
from queries.tasks import sweep
from tests.support.apps import make_app, welcome_inputs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def query(team, smtp_server):
    return make_app(team.workspace, smtp_server.port)[1]


def test_a_run_in_a_rolled_back_transaction_is_never_sent(query, team, smtp_server):
    with pytest.raises(RuntimeError), transaction.atomic():
        create_run(query, team.teammate, welcome_inputs())
        raise RuntimeError("the surrounding work failed")
    assert not QueryRun.objects.exists()
    assert smtp_server.handler.transactions == 0


def test_only_one_claim_wins(query, team, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with transaction.atomic():
        run = QueryRun.objects.create(workspace=team.workspace, query=query, fields={})
    assert claim(run.pk) is True
    assert claim(run.pk) is False
    assert execute_run(run.pk) is None


def test_a_transient_failure_is_queued_again_with_backoff(query, team, smtp_server, settings):
    settings.KILN_RUN_RETRY_BASE_SECONDS = 30
    smtp_server.reply_to_data("451 4.3.0 Greylisted")
    run = create_run(query, team.teammate, welcome_inputs())
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("scheduled", 1)
    assert run.next_attempt_at > timezone.now() + timedelta(seconds=20)
    assert run.error.endswith("451 4.3.0 Greylisted")
    # Not due yet: a redelivered task does nothing.
    assert execute_run(run.pk) is None
    QueryRun.objects.filter(pk=run.pk).update(next_attempt_at=timezone.now())
    assert execute_run(run.pk).status == "sent"
    assert len(smtp_server.received) == 1


def test_retries_stop_at_the_attempt_limit(query, team, smtp_server, settings):
    settings.KILN_RUN_RETRY_BASE_SECONDS = 0
    settings.KILN_RUN_MAX_ATTEMPTS = 2
    smtp_server.reply_to_data("451 busy", "451 still busy")
    run = create_run(query, team.teammate, welcome_inputs())
    execute_run(run.pk)
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("failed", 2)
    assert (
        run.error == "Gave up after 2 attempt(s): The server refused while waiting for the "
        "server to accept the message: 451 still busy"
    )
    assert [f["attempt"] for f in run.failures] == [1, 2]


def test_a_lost_connection_after_data_is_unknown_and_not_retried(query, team, smtp_server):
    async def hang_up(server, session, envelope):
        server.transport.close()

    smtp_server.handler.handle_DATA = hang_up
    run = create_run(query, team.teammate, welcome_inputs())
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("unknown", 1)
    assert "may or may not have been delivered" in run.error
    assert sweep()["enqueued"] == 0


def test_the_sweep_marks_runs_stuck_in_running_unknown(query, team, settings):
    settings.KILN_RUN_STUCK_SECONDS = 60
    with transaction.atomic():
        run = QueryRun.objects.create(workspace=team.workspace, query=query, fields={})
    QueryRun.objects.filter(pk=run.pk).update(
        status="sending", started_at=timezone.now() - timedelta(minutes=5)
    )
    assert sweep() == {"enqueued": 0, "unknown": 1}
    run.refresh_from_db()
    assert run.status == "unknown" and "worker stopped" in run.error


def test_the_sweep_enqueues_runs_never_enqueued(query, team, smtp_server):
    with transaction.atomic():
        run = QueryRun.objects.create(
            workspace=team.workspace,
            query=query,
            datasource=query.datasource,
            action=query.action,
            fields={"from": "a@kiln.test", "to": "b@example.com", "subject": "Swept"},
        )
    assert sweep()["enqueued"] == 1
    run.refresh_from_db()
    assert run.status == "sent"
    assert smtp_server.received[0].message["Subject"] == "Swept"
    assert sweep()["enqueued"] == 0


def test_the_password_is_not_in_the_run(query, team):
    datasource = query.datasource
    datasource.config = {**datasource.config, "auth": "password", "username": "u"}
    datasource.secret = "Run-Secret-991"
    datasource.save()
    with transaction.atomic():
        run = create_run(query, team.teammate, welcome_inputs())
    run.refresh_from_db()
    stored = str(QueryRun.objects.filter(pk=run.pk).values().get())
    assert "Run-Secret-991" not in stored
