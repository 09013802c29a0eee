"""A mail merge in real Chromium: a button sends one personalised email per row of a
200-row Table, through a real Celery worker process on a real Redis (sharing the live
server's test database) to the real SMTP fixture; the page's progress panel follows it
live, survives a reload, and lists a failed row with a Retry. The query editor's Preview
shows the count and the first rows' messages, and its Run asks with the count.

How the worker is killed midway and the fixture still ends with exactly 200 messages:
a run killed while it is ``sending`` ends ``unknown`` and is never sent again
(docs/reliability.md), so a kill that lands before the message reached the server would
lose that row for good. The fixture therefore holds its reply to the 80th message
*after keeping it* (``HoldAfterData``): the worker is killed at that known place, with
that message delivered and its run still ``sending``. The sweep then marks that run
``unknown`` (the test backdates its claim by KILN_RUN_STUCK_SECONDS instead of waiting
for it, as tests/integration/test_reliability.py does), and a new worker sends the 120
rows still waiting. The fixture holds 200 messages, one per address, none twice; the
panel counts 199 sent and 1 unknown, and its bar (rows done) reaches 200.
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from builder.models import App, Page, Query, Widget
from builder.publishing import publish
from queries.models import QueryRun
from queries.tasks import sweep
from tests.e2e.conftest import SCREENSHOTS
from tests.support.apps import mailer
from tests.support.smtp_server import Received

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

ROWS = 200
HELD = 80


def people(count: int) -> list[dict]:
    return [
        {"name": f"Person {i:03d}", "email": f"person{i:03d}@example.com"} for i in range(count)
    ]


def make_merge_app(team, port: int, rows: list[dict], *, slug: str = "newsletter") -> App:
    """An app with a Table of ``rows`` and a button that sends one email per row."""
    app = App.objects.create(workspace=team.workspace, name="Newsletter", slug=slug, public=False)
    home = Page.objects.create(app=app, name="Home", slug="home")
    Widget.objects.create(
        page=home, name="table1", type="table", properties={"data": rows, "page_size": 5}, w=8
    )
    Widget.objects.create(
        page=home,
        name="send_btn",
        type="button",
        properties={"text": "Send to everyone"},
        events={"click": [{"action": "run_query", "query": "newsletter"}]},
        x=8,
        w=4,
    )
    Query.objects.create(
        app=app,
        name="newsletter",
        datasource=mailer(team.workspace, port, timeout=5),
        fields={
            "from": "news@kiln.test",
            "to": "<< row.email >>",
            "subject": "Hello << row.name >>",
            "body": "Dear << row.name >>, you are number << index + 1 >>.",
        },
        for_each="<< table1.data >>",
    )
    publish(app, team.owner)
    return app


class HoldAfterData:
    """The fixture's DATA hook: the ``at``-th message is kept, then its reply is held
    until ``release`` (a server that took the message and has not answered yet)."""

    def __init__(self, smtp_server, at: int):
        self.handler = smtp_server.handler
        self.at = at
        self.seen = 0
        self.reached = threading.Event()
        self.release = threading.Event()
        self.original = self.handler.handle_DATA
        self.handler.handle_DATA = self

    async def __call__(self, server, session, envelope):
        self.seen += 1
        if self.seen != self.at:
            return await self.original(server, session, envelope)
        with self.handler.lock:
            self.handler.transactions += 1
            self.handler.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
            )
        self.reached.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        return "250 OK: queued"


def counts(page) -> dict[str, int]:
    panel = page.locator(".kiln-merge").first
    return {
        key: int(panel.get_attribute(f"data-{key}") or -1)
        for key in ("total", "sent", "failed", "remaining")
    }


def sign_in_owner(sign_in):
    return sign_in("owner", "owner-pass-1")


def test_a_merge_of_200_rows_survives_a_killed_worker_and_a_reload(
    team, smtp_server, celery_worker, live_server, page, sign_in, screenshot
):
    app = make_merge_app(team, smtp_server.port, people(ROWS))
    hold = HoldAfterData(smtp_server, HELD)
    sign_in_owner(sign_in)
    started = time.monotonic()
    try:
        page.goto(f"{live_server.url}/apps/{app.slug}/")
        page.get_by_role("button", name="Send to everyone").click()
        dialog = page.locator("#kiln-confirm")
        expect(dialog).to_be_visible()
        expect(dialog.locator(".kiln-confirm-message")).to_have_text("Send 200 emails?")
        dialog.get_by_role("button", name="OK").click()

        panel = page.locator(".kiln-merge")
        expect(panel).to_have_count(1)
        expect(panel.locator(".kiln-merge-bar")).to_have_attribute("max", str(ROWS))
        assert hold.reached.wait(40), celery_worker.output()[-3000:]
        # Live: the panel counts the rows sent before the held one without a reload.
        expect(panel).to_have_attribute("data-sent", str(HELD - 1), timeout=15_000)

        celery_worker.process.send_signal(signal.SIGKILL)
        celery_worker.process.wait(10)
        parent = QueryRun.objects.get(query__app=app, parent__isnull=True)
        assert parent.progress()["sent"] == HELD - 1

        # A reload shows the merge where it is.
        page.reload()
        expect(panel).to_have_count(1)
        expect(panel).to_have_attribute("data-sent", str(HELD - 1))
        expect(panel).to_have_attribute("data-remaining", str(ROWS - HELD + 1))
        expect(panel.locator(".kiln-merge-bar")).to_have_attribute("value", str(HELD - 1))
        expect(panel.get_by_role("button", name="Stop")).to_be_visible()
        screenshot("merge-progress")

        # The sweep, as if KILN_RUN_STUCK_SECONDS had passed: the held row is unknown.
        stuck = QueryRun.objects.filter(parent=parent, status="sending")
        assert stuck.count() == 1
        stuck.update(started_at=timezone.now() - timedelta(days=1))
        assert sweep()["unknown"] == 1
        hold.release.set()
        celery_worker.start()

        expect(panel).to_have_attribute("data-remaining", "0", timeout=40_000)
        expect(panel).to_have_attribute("data-sent", str(ROWS - 1))
        expect(panel.locator(".kiln-merge-bar")).to_have_attribute("value", str(ROWS))
        expect(panel.locator(".kiln-merge-unknown")).to_contain_text("1")
        expect(page.locator(".kiln-toast")).to_contain_text("199 sent")
    finally:
        hold.release.set()

    received = smtp_server.received
    recipients = Counter(r for message in received for r in message.rcpt_tos)
    assert len(received) == ROWS
    assert len(recipients) == ROWS and max(recipients.values()) == 1
    subjects = {message.message["Subject"] for message in received}
    assert subjects == {f"Hello Person {i:03d}" for i in range(ROWS)}
    one = next(m for m in received if m.rcpt_tos == ["person042@example.com"])
    assert "Dear Person 042, you are number 43." in one.message.get_body().get_content()
    assert time.monotonic() - started < 60


def test_a_failed_row_is_listed_with_its_error_and_sent_again_by_retry(
    team, smtp_server, live_server, page, sign_in
):
    """The embedded default (no worker): the click's answer carries the merge's end."""
    app = make_merge_app(team, smtp_server.port, people(5), slug="small")
    smtp_server.refuse("person003@example.com", "550 5.1.1 No such user here")
    sign_in_owner(sign_in)
    page.goto(f"{live_server.url}/apps/{app.slug}/")
    page.get_by_role("button", name="Send to everyone").click()
    expect(page.locator(".kiln-confirm-message")).to_have_text("Send 5 emails?")
    page.locator("#kiln-confirm").get_by_role("button", name="OK").click()

    panel = page.locator(".kiln-merge")
    expect(panel).to_have_attribute("data-sent", "4")
    expect(panel).to_have_attribute("data-failed", "1")
    expect(page.locator(".kiln-toast-error")).to_contain_text("1 of 5 failed")
    row = panel.locator(".kiln-merge-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Row 4")
    expect(row).to_contain_text("person003@example.com")
    expect(row).to_contain_text("No such user")

    smtp_server.handler.refuse.clear()
    row.get_by_role("button", name="Retry row 4").click()
    expect(panel).to_have_attribute("data-sent", "5", timeout=15_000)
    expect(panel).to_have_attribute("data-failed", "0")
    expect(panel.locator(".kiln-merge-row")).to_have_count(0)
    expect(page.locator(".kiln-toast-success")).to_contain_text("5 sent")
    recipients = Counter(r for message in smtp_server.received for r in message.rcpt_tos)
    assert len(recipients) == 5 and max(recipients.values()) == 1


def test_the_editor_previews_the_merge_and_asks_before_running_it(
    team, smtp_server, live_server, page, sign_in
):
    app = make_merge_app(team, smtp_server.port, people(ROWS), slug="preview")
    sign_in_owner(sign_in)
    page.goto(f"{live_server.url}/edit/{app.slug}/queries/newsletter/")
    expect(page.get_by_label("For each row")).to_have_value("<< table1.data >>")
    # row and index are known names in a merge's fields: no warning under them.
    expect(page.locator("#msgs-to .qe-msg-warning")).to_have_count(0)
    page.get_by_role("button", name=re.compile("Preview")).click()
    response = page.locator("#qe-response")
    expect(response.locator(".qe-merge-count")).to_contain_text("200 emails will go")
    rows = response.locator(".qe-merge-row")
    expect(rows).to_have_count(3)
    expect(rows.nth(1)).to_contain_text("person001@example.com")
    expect(rows.nth(1)).to_contain_text("Hello Person 001")
    expect(rows.nth(1)).to_contain_text("Dear Person 001, you are number 2.")
    # The For each row field beside the preview (the side pane scrolls on its own).
    page.locator(".qe-field-for_each").scroll_into_view_if_needed()
    page.locator("#qe-response-panel").scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "merge-preview.png"))

    page.get_by_role("button", name="Run").click()
    expect(response).to_contain_text("Send 200 emails?")
    expect(response.get_by_role("button", name="Send 200 emails")).to_be_visible()
    assert not QueryRun.objects.filter(query__app=app).exists()
    assert smtp_server.received == []


def test_a_merge_over_an_uploaded_csv_fails_only_the_malformed_row(
    team, smtp_server, live_server, page, sign_in
):
    """The CSV is chosen in the page's file picker: the confirmation's count is asked
    with the file (posted with the page's form), and the merge sends from it."""
    app = App.objects.create(workspace=team.workspace, name="Csv", slug="csv")
    home = Page.objects.create(app=app, name="Home", slug="home")
    Widget.objects.create(
        page=home, name="files1", type="filepicker", properties={"label": "List"}, w=6
    )
    Widget.objects.create(
        page=home,
        name="send_btn",
        type="button",
        properties={"text": "Send the list"},
        events={"click": [{"action": "run_query", "query": "mailing"}]},
        x=6,
        w=4,
    )
    Query.objects.create(
        app=app,
        name="mailing",
        datasource=mailer(team.workspace, smtp_server.port),
        fields={"from": "news@kiln.test", "to": "<< row.email >>", "subject": "Hi << row.name >>"},
        for_each="<< files1.files[0] >>",
    )
    publish(app, team.owner)
    csv_text = "\ufeffname;email\nAnn;ann@example.com\nBob;not an address\nCy;cy@example.com\n"
    sign_in_owner(sign_in)
    page.goto(f"{live_server.url}/apps/{app.slug}/")
    page.get_by_label("List").set_input_files(
        {"name": "people.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}
    )
    page.get_by_role("button", name="Send the list").click()
    expect(page.locator(".kiln-confirm-message")).to_have_text("Send 3 emails?")
    page.locator("#kiln-confirm").get_by_role("button", name="OK").click()

    panel = page.locator(".kiln-merge")
    expect(panel).to_have_attribute("data-sent", "2")
    expect(panel).to_have_attribute("data-failed", "1")
    row = panel.locator(".kiln-merge-row")
    expect(row).to_contain_text("Row 2")
    expect(row).to_contain_text("not an address")
    expect(page.locator(".kiln-toast-error")).to_contain_text("1 of 3 failed")
    assert sorted(r for m in smtp_server.received for r in m.rcpt_tos) == [
        "ann@example.com",
        "cy@example.com",
    ]


def test_stop_halfway_then_send_the_rest_sends_each_row_once(
    team, smtp_server, celery_worker, live_server, page, sign_in
):
    app = make_merge_app(team, smtp_server.port, people(40), slug="stopper")
    smtp_server.delay_data(0.1)  # about four seconds for the 40 rows
    sign_in_owner(sign_in)
    page.goto(f"{live_server.url}/apps/{app.slug}/")
    page.get_by_role("button", name="Send to everyone").click()
    page.locator("#kiln-confirm").get_by_role("button", name="OK").click()
    panel = page.locator(".kiln-merge")
    expect(panel.locator(".kiln-merge-sent strong")).not_to_have_text("0", timeout=15_000)
    panel.get_by_role("button", name="Stop").click()
    expect(page.locator(".kiln-toast-info").first).to_contain_text("Stopped:")
    resume = panel.locator(".kiln-merge-resume")
    expect(resume).to_be_visible(timeout=15_000)
    stopped = int(panel.get_attribute("data-total") or 0) - int(
        panel.get_attribute("data-sent") or 0
    )
    assert 0 < stopped < 40
    expect(resume).to_have_text(f"Send the rest ({stopped})")
    assert len(smtp_server.received) == 40 - stopped

    resume.click()
    expect(panel).to_have_attribute("data-sent", "40", timeout=30_000)
    expect(panel).to_have_attribute("data-remaining", "0")
    recipients = Counter(r for message in smtp_server.received for r in message.rcpt_tos)
    assert len(recipients) == 40 and max(recipients.values()) == 1
