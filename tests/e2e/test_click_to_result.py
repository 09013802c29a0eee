"""A click's result in real Chromium: in the embedded default it comes with the click's
own response (no poll at all); with a worker, a run that outlasts the click's wait is
polled, and the poll is answered by the run's end."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from builder.models import App, Page, Query, Widget
from builder.publishing import publish
from tests.support.apps import mailer

pytestmark = pytest.mark.e2e


@pytest.fixture
def toast_app(team, smtp_server):
    app = App.objects.create(workspace=team.workspace, name="Toast", slug="toast", public=True)
    home = Page.objects.create(app=app, name="Home", slug="home")
    Widget.objects.create(
        page=home,
        name="send_btn",
        type="button",
        properties={"text": "Send"},
        events={
            "click": [
                {
                    "action": "run_query",
                    "query": "send",
                    "on_success": [{"action": "show_toast", "kind": "success", "message": "Sent"}],
                }
            ]
        },
        w=4,
    )
    Query.objects.create(
        app=app,
        name="send",
        datasource=mailer(team.workspace, smtp_server.port, timeout=3),
        fields={"from": "app@kiln.test", "to": "ann@example.com", "subject": "Hi", "body": "Hi"},
    )
    publish(app, team.owner)
    return app


def polls_of(page) -> list[str]:
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/poll") else None)
    return polls


def test_the_embedded_default_answers_the_click_with_the_toast(
    toast_app, live_server, page, smtp_server
):
    polls = polls_of(page)
    page.goto(f"{live_server.url}/apps/toast/")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".kiln-toast-success")).to_contain_text("Sent")
    assert polls == []
    assert page.locator("#kiln-pollers .kiln-poller").count() == 0
    assert len(smtp_server.received) == 1


def test_with_a_worker_a_run_outlasting_the_click_is_long_polled(
    toast_app, celery_worker, live_server, page, smtp_server, settings
):
    settings.KILN_VIEWER_CLICK_WAIT_SECONDS = 0  # the click answers with a poller
    polls = polls_of(page)
    page.goto(f"{live_server.url}/apps/toast/")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".kiln-toast-success")).to_contain_text("Sent", timeout=20_000)
    assert polls, "the result came through the poller"
    expect(page.locator("#kiln-pollers .kiln-poller")).to_have_count(0)
    expect(page.locator("#w-send_btn")).not_to_have_class(re.compile(r"\bkiln-busy\b"))
