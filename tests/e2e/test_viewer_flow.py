"""The published app's own behaviour in real Chromium (real Celery worker and SMTP server):
inputs a run reads are checked where they are typed, a Form's own Submit runs its submit
event, and a query that asks first asks in the page's dialog."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from builder.models import App, Page, Query, Widget
from builder.publishing import publish
from queries.models import QueryRun
from tests.support.apps import mailer

pytestmark = pytest.mark.e2e

URL = "/apps/desk/"


@pytest.fixture
def desk(team, smtp_server, celery_worker):
    datasource = mailer(team.workspace, smtp_server.port, timeout=3)
    app = App.objects.create(workspace=team.workspace, name="Desk", slug="desk")
    home = Page.objects.create(app=app, name="Home", slug="home")
    Widget.objects.create(
        page=home,
        name="email_input",
        type="input",
        properties={"label": "Send to", "required": True, "input_type": "email"},
        x=0,
        y=0,
        w=4,
    )
    Widget.objects.create(
        page=home,
        name="note_input",
        type="input",
        properties={"label": "Note"},
        x=4,
        y=0,
        w=4,
    )
    Widget.objects.create(
        page=home,
        name="send_btn",
        type="button",
        properties={"text": "Send note"},
        events={
            "click": [
                {
                    "action": "run_query",
                    "query": "note",
                    "on_success": [{"action": "show_toast", "kind": "success", "message": "Noted"}],
                }
            ]
        },
        x=8,
        y=0,
        w=4,
    )
    form = Widget.objects.create(
        page=home,
        name="form1",
        type="form",
        properties={"title": "Contact", "submit_label": "Send message"},
        events={
            "submit": [
                {
                    "action": "run_query",
                    "query": "contact",
                    "on_success": [
                        {"action": "show_toast", "kind": "success", "message": "Message sent"}
                    ],
                }
            ]
        },
        x=0,
        y=2,
        w=6,
        h=5,
    )
    Widget.objects.create(
        page=home,
        name="from_email",
        type="input",
        parent=form,
        properties={"label": "Your email", "required": True, "input_type": "email"},
    )
    Widget.objects.create(
        page=home,
        name="ping_btn",
        type="button",
        properties={"text": "Ping everyone"},
        events={
            "click": [
                {
                    "action": "run_query",
                    "query": "ping",
                    "on_success": [
                        {"action": "show_toast", "kind": "success", "message": "Pinged"}
                    ],
                }
            ]
        },
        x=6,
        y=2,
        w=4,
    )
    common = {"from": "desk@kiln.test", "subject": "Hello"}
    Query.objects.create(
        app=app,
        name="note",
        datasource=datasource,
        fields={**common, "to": "<< email_input.value >>", "body": "<< note_input.value >>"},
    )
    Query.objects.create(
        app=app,
        name="contact",
        datasource=datasource,
        fields={**common, "to": "desk@example.com", "body": "From << form1.data.from_email >>"},
    )
    Query.objects.create(
        app=app,
        name="ping",
        datasource=datasource,
        confirm_before_run=True,
        confirm_message="Send a ping to the whole team?",
        fields={**common, "to": "team@example.com"},
    )
    publish(app, team.owner)
    return app


def test_a_button_outside_a_form_shows_the_message_under_the_empty_input(
    desk, live_server, sign_in, page, smtp_server
):
    sign_in("viewer", "viewer-pass-1")
    page.goto(f"{live_server.url}{URL}")
    page.get_by_label("Note").fill("Call back")
    page.get_by_role("button", name="Send note").click()
    expect(page.locator("#email_input-errors")).to_contain_text("Send to is required.")
    expect(page.locator(".kiln-toast-error")).to_contain_text("Check the highlighted fields.")
    expect(page.get_by_label("Note")).to_have_value("Call back")  # nothing typed is lost
    assert not QueryRun.objects.exists()

    page.get_by_label("Send to").fill("bo@example.com")
    page.get_by_role("button", name="Send note").click()
    expect(page.locator(".kiln-toast-success")).to_contain_text("Noted", timeout=20_000)
    expect(page.locator("#email_input-errors")).to_be_empty()
    (received,) = smtp_server.wait_for(1)
    assert received.message["To"] == "bo@example.com"


def test_the_forms_own_submit_runs_the_query(desk, live_server, sign_in, page, smtp_server):
    sign_in("viewer", "viewer-pass-1")
    page.goto(f"{live_server.url}{URL}")
    submit = page.get_by_role("button", name="Send message")
    submit.click()
    expect(page.locator("#from_email-errors")).to_contain_text("Your email is required.")
    assert not QueryRun.objects.exists()
    page.get_by_label("Your email").fill("ann@example.com")
    submit.click()
    expect(page.locator(".kiln-toast-success")).to_contain_text("Message sent", timeout=20_000)
    (received,) = smtp_server.wait_for(1)
    assert "From ann@example.com" in received.message.get_body(("plain",)).get_content()


def test_the_confirmation_dialog_asks_with_the_builders_message(
    desk, live_server, sign_in, page, smtp_server
):
    sign_in("viewer", "viewer-pass-1")
    page.goto(f"{live_server.url}{URL}")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.get_by_role("button", name="Ping everyone").click()
    confirm = page.locator("#kiln-confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("Send a ping to the whole team?")
    expect(confirm).not_to_contain_text("ping_btn")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    page.wait_for_timeout(800)
    assert not QueryRun.objects.exists() and smtp_server.handler.transactions == 0

    page.get_by_role("button", name="Ping everyone").click()
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="OK").click()
    expect(confirm).to_be_hidden()
    expect(page.locator(".kiln-toast-success")).to_contain_text("Pinged", timeout=20_000)
    assert QueryRun.objects.count() == 1
    assert dialogs == []  # never the browser's own confirm()
