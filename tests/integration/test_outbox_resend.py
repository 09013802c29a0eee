"""Resend from the outbox page, end to end: a run that failed because no server was
listening is sent again by the page's POST once the server is up, exactly once."""

from __future__ import annotations

import pytest

from queries.execution import create_run
from queries.models import QueryRun
from tests.support.apps import make_app, welcome_inputs
from tests.support.smtp_server import SmtpServer, free_port

# Committed transactions: the run's task runs (eagerly, as without Redis) on commit.
pytestmark = pytest.mark.django_db(transaction=True)


def test_resend_of_a_run_that_failed_with_the_server_down_delivers_it_once(client, team, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.KILN_RUN_MAX_ATTEMPTS = 1
    port = free_port()
    _, query = make_app(team.workspace, port)
    failed = create_run(query, team.teammate, welcome_inputs("ann@example.com"))
    failed.refresh_from_db()
    assert failed.status == "failed", failed.error
    assert failed.failures and "refused" in failed.error.lower()

    server = SmtpServer(port=port).start()
    try:
        client.force_login(team.teammate)
        url = f"/w/{team.workspace.slug}/outbox/{failed.pk}/"
        page = client.get(url).content.decode()
        assert f'action="{url}resend"' in page
        response = client.post(url + "resend")
        assert response.status_code == 302
        new = QueryRun.objects.get(resent_from=failed)
        assert response["Location"] == f"/w/{team.workspace.slug}/outbox/{new.pk}/"
        new.refresh_from_db()
        assert new.status == "sent", new.error
        assert len(server.received) == 1
        received = server.received[0]
        assert received.rcpt_tos == ["ann@example.com"]
        # The same message: the stored bytes, Message-ID included.
        assert received.message["Message-ID"] == failed.payload_meta["message_id"]
        assert new.details["message_id"] == failed.payload_meta["message_id"]
        assert QueryRun.objects.get(pk=failed.pk).status == "failed"
        shown = client.get(response["Location"]).content.decode()
        assert f"/outbox/{failed.pk}/" in shown and "Sent" in shown
    finally:
        server.stop()
    assert len(server.received) == 1


@pytest.mark.redis
def test_with_a_worker_the_resend_is_sent_by_the_worker(client, team, settings, celery_worker):
    settings.KILN_RUN_MAX_ATTEMPTS = 1
    port = free_port()
    _, query = make_app(team.workspace, port)
    failed = create_run(query, team.teammate, welcome_inputs("bob@example.com")).wait(20)
    assert failed.status == "failed", (failed.error, celery_worker.output())

    server = SmtpServer(port=port).start()
    try:
        client.force_login(team.teammate)
        response = client.post(f"/w/{team.workspace.slug}/outbox/{failed.pk}/resend")
        assert response.status_code == 302
        new = QueryRun.objects.get(resent_from=failed).wait(20)
        assert new.status == "sent", (new.error, celery_worker.output())
        assert [r.rcpt_tos for r in server.received] == [["bob@example.com"]]
    finally:
        server.stop()
