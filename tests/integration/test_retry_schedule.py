"""A mail server's retry schedule: a greylisting server (451 for minutes) is tried again
until it accepts, over a window apart from the caller's wait; the run says when it
retries (API, outbox, viewer); the embedded default sends a retry when it is due; a
temporary DNS failure is retried and a name that does not exist is not.

The schedule is sped up by its settings only (seconds for minutes); the runs go through
the real path: stored, sent on commit (tasks run eagerly), then by the sweep, as
``manage.py sweep_outbox --loop`` does in the embedded default."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

import kiln.settings as defaults
from builder.demo import create_demo_app
from builder.publishing import publish
from queries.context import query_states
from queries.execution import create_run
from queries.models import ApiToken, QueryRun, RunStatus
from queries.outbox import execute_run
from queries.schedule import describe
from queries.tasks import sweep
from tests.support.apps import mailer, make_app, welcome_inputs

pytestmark = pytest.mark.django_db(transaction=True)

GREYLISTED = "451 4.7.1 Greylisted, please try again later"


@pytest.fixture
def contact(team, smtp_server):
    return make_app(team.workspace, smtp_server.port)


@pytest.fixture
def fast_schedule(settings):
    """The mail server's schedule in tenths of seconds: a retry every half second (long
    enough for a loaded machine to see the run waiting), for 5 s; the sweep's grace
    period an hour, so that only a retry sent when due (not one found overdue) can pass."""
    settings.KILN_RUN_RETRY_BASE_SECONDS = 0.5
    settings.KILN_RUN_RETRY_MAX_SECONDS = 0.5
    settings.KILN_RUN_RETRY_WINDOW_SECONDS = 5
    settings.KILN_RUN_MAX_ATTEMPTS = 30
    settings.KILN_SWEEP_GRACE_SECONDS = 3600


def sweep_until_finished(run_id: int, seconds: float) -> QueryRun:
    """The embedded default's sweep loop, every 50 ms, until the run ends."""
    deadline = time.monotonic() + seconds
    run = QueryRun.objects.get(pk=run_id)
    while not run.finished and time.monotonic() < deadline:
        sweep()
        time.sleep(0.05)
        run.refresh_from_db()
    return run


def api_get(client, team, run_id: int) -> dict:
    key = ApiToken.issue(team.teammate, "tests")[1]
    response = client.get(f"/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    return response.json()


def test_the_defaults_are_a_mail_servers_minutes():
    assert defaults.KILN_RUN_RETRY_BASE_SECONDS >= 60
    assert defaults.KILN_RUN_RETRY_WINDOW_SECONDS >= 30 * 60
    # Enough attempts for the window: the window, not the count, ends the retries.
    delays, attempts = 0.0, 1
    while delays < defaults.KILN_RUN_RETRY_WINDOW_SECONDS:
        delays += min(
            defaults.KILN_RUN_RETRY_BASE_SECONDS * 2 ** (attempts - 1),
            defaults.KILN_RUN_RETRY_MAX_SECONDS,
        )
        attempts += 1
    assert attempts <= defaults.KILN_RUN_MAX_ATTEMPTS


def test_a_greylisted_message_is_sent_once_the_server_accepts_it(
    client, team, contact, smtp_server, fast_schedule
):
    """The server answers 451 for a second (its minutes, sped up) and then 250."""
    smtp_server.greylist(1.2)
    run = create_run(contact[1], team.teammate, welcome_inputs())
    run.refresh_from_db()
    # Meanwhile: retrying, with a time and the server's reason.
    assert (run.status, run.attempts, run.retrying) == ("scheduled", 1, True)
    assert run.next_attempt_at > timezone.now()
    assert run.error.endswith(GREYLISTED)
    body = api_get(client, team, run.pk)
    assert body["status"] == "scheduled"
    assert body["retrying_at"] == run.next_attempt_at.isoformat()
    assert run.retry_note.startswith("Retrying at ") and run.retry_note.endswith(GREYLISTED)

    run = sweep_until_finished(run.pk, seconds=8)
    assert run.status == "sent", run.failures
    assert run.error == ""
    assert run.attempts == len(run.failures) + 1 >= 3
    assert {f["type"] for f in run.failures} == {"TransientError"}
    assert all(f["message"].endswith(GREYLISTED) for f in run.failures)
    assert smtp_server.handler.greylisted == len(run.failures)
    (received,) = smtp_server.received
    assert received.rcpt_tos == ["ann@example.com"]
    assert api_get(client, team, run.pk)["retrying_at"] is None


def test_a_retry_is_sent_when_due_not_after_the_sweeps_grace(team, contact, smtp_server, settings):
    """Eagerly (no worker) a retry has no task: the first sweep after its time sends it,
    though the grace period for lost tasks (an hour here) has not passed."""
    settings.KILN_RUN_RETRY_BASE_SECONDS = 60
    settings.KILN_RUN_RETRY_WINDOW_SECONDS = 3600
    settings.KILN_SWEEP_GRACE_SECONDS = 3600
    smtp_server.reply_to_data("451 4.3.0 Try again later")
    run = create_run(contact[1], team.teammate, welcome_inputs())
    run.refresh_from_db()
    assert (run.status, run.enqueued_at) == ("scheduled", None)
    assert sweep()["enqueued"] == 0  # not due yet: nothing sent early
    QueryRun.objects.filter(pk=run.pk).update(next_attempt_at=timezone.now())
    assert sweep()["enqueued"] == 1
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("sent", 2)
    assert len(smtp_server.received) == 1


def test_the_window_is_apart_from_the_querys_timeout_and_ends_the_retries(
    team, contact, smtp_server, settings
):
    """A 60 s query timeout and a 10 minute window: a failure two minutes in is
    retried, about a minute later; one after the window gives up."""
    settings.KILN_RUN_RETRY_BASE_SECONDS = 60
    settings.KILN_RUN_RETRY_MAX_SECONDS = 900
    settings.KILN_RUN_RETRY_WINDOW_SECONDS = 600
    settings.KILN_RUN_MAX_ATTEMPTS = 10
    smtp_server.reply_to_data(*[GREYLISTED] * 3)
    run = create_run(contact[1], team.teammate, welcome_inputs())
    run.refresh_from_db()
    assert run.timeout_seconds == 60
    assert timedelta(seconds=45) < run.next_attempt_at - timezone.now() < timedelta(seconds=75)

    def attempt_at(seconds_after_creation: int) -> QueryRun:
        now = timezone.now()
        created = now - timedelta(seconds=seconds_after_creation)
        QueryRun.objects.filter(pk=run.pk).update(created_at=created, next_attempt_at=now)
        execute_run(run.pk)
        return QueryRun.objects.get(pk=run.pk)

    assert attempt_at(120).retrying  # past the query's 60 s, within the window
    gave_up = attempt_at(60 + 600 - 30)  # its next retry would fall after the window
    assert gave_up.status == "failed"
    assert gave_up.error.startswith("Gave up after 3 attempt(s): The server refused while")
    assert gave_up.error.endswith(GREYLISTED)
    assert [f["attempt"] for f in gave_up.failures] == [1, 2, 3]
    assert smtp_server.received == []


def test_a_scheduled_sends_window_counts_from_its_send_at(team, contact, smtp_server, settings):
    settings.KILN_RUN_RETRY_BASE_SECONDS = 60
    settings.KILN_RUN_RETRY_WINDOW_SECONDS = 600
    smtp_server.reply_to_data(GREYLISTED, GREYLISTED)
    run = create_run(contact[1], team.teammate, welcome_inputs())
    now = timezone.now()
    QueryRun.objects.filter(pk=run.pk).update(
        status="scheduled", attempts=0, created_at=now - timedelta(days=1), send_at=now
    )
    QueryRun.objects.filter(pk=run.pk).update(next_attempt_at=now)
    execute_run(run.pk)
    assert QueryRun.objects.get(pk=run.pk).retrying


# Temporary DNS failures -------------------------------------------------------------------
MX = "mx.kiln.test"


@pytest.fixture
def dns(monkeypatch):
    """getaddrinfo for MX answers from ``dns.answers`` in turn (an errno fails, else
    127.0.0.1); any other name is resolved for real (the IP addresses the tests use)."""
    real = socket.getaddrinfo

    class Resolver:
        answers: list[int | None] = []

        def __call__(self, host, port, *args, **kwargs):
            if host != MX:
                return real(host, port, *args, **kwargs)
            errno = self.answers.pop(0) if self.answers else None
            if errno == socket.EAI_AGAIN:
                raise socket.gaierror(errno, "Temporary failure in name resolution")
            if errno is not None:
                raise socket.gaierror(errno, "Name or service not known")
            return real("127.0.0.1", port, *args, **kwargs)

    resolver = Resolver()
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    return resolver


def test_a_temporary_dns_failure_is_retried(team, smtp_server, dns, settings):
    settings.KILN_RUN_RETRY_BASE_SECONDS = 0.01
    settings.KILN_RUN_RETRY_WINDOW_SECONDS = 5
    dns.answers = [socket.EAI_AGAIN]
    query = make_app(team.workspace, smtp_server.port, host=MX)[1]
    run = create_run(query, team.teammate, welcome_inputs())
    run.refresh_from_db()
    assert run.retrying, run.error
    assert run.error_field == "host"
    assert MX in run.error and "Temporary failure in name resolution" in run.error
    run = sweep_until_finished(run.pk, seconds=3)
    assert (run.status, run.attempts) == ("sent", 2)
    assert len(smtp_server.received) == 1


def test_a_name_that_does_not_exist_fails_at_once_naming_the_host(team, smtp_server, dns):
    dns.answers = [socket.EAI_NONAME]
    query = make_app(team.workspace, smtp_server.port, host=MX)[1]
    run = create_run(query, team.teammate, welcome_inputs())
    run.refresh_from_db()
    assert (run.status, run.attempts, run.error_field) == ("failed", 1, "host")
    assert run.error == f"Could not resolve the host name {MX!r}: Name or service not known."
    assert smtp_server.received == []


# Where a person sees it -------------------------------------------------------------------
def retrying_run(team, smtp_server, query) -> QueryRun:
    smtp_server.reply_to_data(GREYLISTED)
    run = create_run(query, team.teammate, welcome_inputs())
    run.refresh_from_db()
    assert run.retrying
    return run


def test_the_outbox_shows_when_a_run_retries_and_why(client, team, contact, smtp_server):
    run = retrying_run(team, smtp_server, contact[1])
    at = timezone.localtime(run.next_attempt_at)
    shown = describe(run.next_attempt_at)
    client.force_login(team.owner)
    listing = client.get(reverse("editor:outbox", args=[team.workspace.slug])).text
    assert f'Retrying at <time datetime="{at.isoformat()}">{shown}</time>' in listing
    assert GREYLISTED in listing
    page = client.get(reverse("editor:outbox_run", args=[team.workspace.slug, run.pk])).text
    assert "retrying at</strong>" in page and f">{shown}</time>" in page


def test_a_retry_time_is_shown_with_its_date_and_time_zone(settings):
    """A retry past midnight, read from another zone: the date and the zone are in the
    note, as the scheduled-send toast shows a time."""
    settings.TIME_ZONE = "Europe/Paris"
    at = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)
    run = QueryRun(status=RunStatus.SCHEDULED, attempts=1, next_attempt_at=at, error="451 later")
    assert run.next_attempt_shown == "2026-12-08 00:30 CET"
    assert run.retry_note == "Retrying at 2026-12-08 00:30 CET: 451 later"


def click_on_a_greylisting_server(client, team, smtp_server, reply: str = GREYLISTED):
    """The demo app's form submitted by a viewer; the server answers ``reply``."""
    demo = create_demo_app(team.workspace, mailer(team.workspace, smtp_server.port), team.owner)
    publish(demo, team.owner)
    smtp_server.reply_to_data(reply)
    client.force_login(team.viewer)
    fields = {"widget": "form1", "event": "submit", "name": "Ann", "email": "ann@example.com"}
    response = client.post("/apps/contact-us/contact/events", {**fields, "message": "Hi"})
    assert response.status_code == 200
    run = QueryRun.objects.get()
    assert run.retrying
    return response, run


def test_a_click_whose_run_retries_later_is_told_when_and_why(client, team, smtp_server, settings):
    """Not a spinner for minutes: an info toast, and no poller; a page that polls is
    told the same at once. The server's text is shown as text."""
    settings.KILN_RUN_RETRY_BASE_SECONDS = 60
    settings.KILN_RUN_RETRY_WINDOW_SECONDS = 3600
    reply = "451 4.7.1 <img src=x onerror=alert(1)> greylisted"
    response, run = click_on_a_greylisting_server(client, team, smtp_server, reply)
    note = f"Retrying at {describe(run.next_attempt_at)}: "
    assert note in response.text and "kiln-toast-info" in response.text
    assert "&lt;img src=x onerror=alert(1)&gt; greylisted" in response.text
    assert "<img src=x" not in response.text
    assert "kiln-poller" not in response.text
    assert "was sent" not in response.text
    started = time.monotonic()
    poll = client.post(
        f"/apps/contact-us/contact/runs/{run.pk}/poll",
        {"widget": "form1", "path": "submit-0", "trigger": "form1"},
    )
    assert note in poll.text and "kiln-poller" not in poll.text
    assert time.monotonic() - started < 1


def test_a_click_whose_retry_comes_within_a_poll_keeps_polling(client, team, smtp_server, settings):
    settings.KILN_RUN_RETRY_BASE_SECONDS = 0.5
    response, run = click_on_a_greylisting_server(client, team, smtp_server)
    assert "kiln-poller" in response.text and "Retrying at" not in response.text


def test_the_api_lists_retrying_at_only_while_retrying(client, team, contact, smtp_server):
    run = retrying_run(team, smtp_server, contact[1])
    body = api_get(client, team, run.pk)
    assert body["retrying_at"] == run.next_attempt_at.isoformat()
    assert body["error"].endswith(GREYLISTED) and body["attempts"] == 1
    QueryRun.objects.filter(pk=run.pk).update(next_attempt_at=timezone.now())
    execute_run(run.pk)
    body = api_get(client, team, run.pk)
    assert (body["status"], body["retrying_at"]) == ("sent", None)


def test_a_page_reading_a_retrying_query_says_it_retries(client, team, smtp_server, settings):
    """``<< q.error >>`` (the demo's "Last result:" line) says "Retrying at ..." with the
    reason, not the reason alone, which reads as a final failure; ``<< q.status >>``
    stays the status code, "scheduled"."""
    settings.KILN_RUN_RETRY_BASE_SECONDS = 60
    settings.KILN_RUN_RETRY_WINDOW_SECONDS = 3600
    _, run = click_on_a_greylisting_server(client, team, smtp_server)
    page = client.get("/apps/contact-us/contact/").text
    assert run.retry_note.startswith(f"Retrying at {describe(run.next_attempt_at)}: ")
    assert run.retry_note.endswith(GREYLISTED)
    assert f"Last result: {run.retry_note}" in page
    state = query_states([run.query], team.viewer)["send_message"]
    assert state["status"] == "scheduled"
    assert state["error"] == run.retry_note
    assert state["runs"][0]["error"] == run.retry_note
