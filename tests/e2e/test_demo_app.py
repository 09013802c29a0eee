"""The demo app in real Chromium, with a real Celery worker and a real SMTP server."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from builder.demo import create_demo_app
from queries.models import QueryRun
from tests.support.apps import mailer
from tests.support.smtp_server import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo(team, smtp_server, celery_worker):
    datasource = mailer(team.workspace, smtp_server.port, timeout=3)
    app = create_demo_app(team.workspace, datasource, team.owner)
    return app, datasource


def fill_form(page):
    page.get_by_label("Your name").fill("Ann Example")
    page.get_by_label("Email").fill("ann@example.com")
    page.get_by_label("Message", exact=True).fill("Please call me back.")


def test_sending_the_contact_form(demo, live_server, sign_in, page, smtp_server, screenshot):
    sign_in("viewer", "viewer-pass-1")
    page.goto(f"{live_server.url}/apps/contact-us/")
    fill_form(page)
    page.get_by_label("Attachments").set_input_files(
        [
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"first file"},
            {"name": "photo.png", "mimeType": "image/png", "buffer": b"\x89PNG second"},
        ]
    )
    send = page.get_by_role("button", name="Send")
    send.dblclick()
    toast = page.locator(".kiln-toast-success")
    expect(toast).to_contain_text("Thanks Ann Example, your message was sent.", timeout=20_000)
    expect(page.locator("#w-last_result")).to_contain_text("Email sent successfully")
    expect(page.locator("#w-sent tbody tr")).to_have_count(1)
    expect(page.get_by_label("Your name")).to_have_value("")
    page.evaluate("getSelection().removeAllRanges()")  # the double click selected a word
    screenshot("demo-after-send")
    expect(toast).to_be_hidden(timeout=10_000)  # success toasts hide themselves

    (received,) = smtp_server.received
    msg = received.message
    assert msg["Subject"] == "Message from Ann Example"
    assert msg["Reply-To"] == "ann@example.com"
    assert "Please call me back." in msg.get_body(("html",)).get_content()
    attachments = {a.get_filename(): a.get_content() for a in msg.iter_attachments()}
    assert attachments == {"notes.txt": "first file", "photo.png": b"\x89PNG second"}
    assert QueryRun.objects.count() == 1


def test_the_smtp_server_down_shows_an_error_and_keeps_the_form(
    demo, live_server, sign_in, page, screenshot
):
    _, datasource = demo
    datasource.config = {**datasource.config, "port": free_port()}
    datasource.save()
    sign_in("viewer", "viewer-pass-1")
    page.goto(f"{live_server.url}/apps/contact-us/")
    fill_form(page)
    page.get_by_role("button", name="Send").click()
    error = page.locator(".kiln-toast-error")
    expect(error).to_contain_text("Connection refused", timeout=30_000)
    expect(page.get_by_label("Your name")).to_have_value("Ann Example")
    expect(page.get_by_label("Message", exact=True)).to_have_value("Please call me back.")
    screenshot("demo-error-toast")
    page.wait_for_timeout(6_000)
    expect(error).to_be_visible()  # errors stay until dismissed
    error.get_by_role("button", name="Dismiss").click()
    expect(error).to_have_count(0)


def test_a_required_field_left_empty_sends_nothing(demo, live_server, sign_in, page, smtp_server):
    sign_in("viewer", "viewer-pass-1")
    page.goto(f"{live_server.url}/apps/contact-us/")
    page.get_by_label("Your name").fill("Ann")
    page.get_by_label("Message", exact=True).fill("Hi")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#email-errors")).to_contain_text("required")
    assert not QueryRun.objects.exists()
    assert smtp_server.handler.transactions == 0


def test_a_file_over_the_limit_is_refused_in_the_browser(demo, live_server, sign_in, page):
    sign_in("viewer", "viewer-pass-1")
    page.goto(f"{live_server.url}/apps/contact-us/")
    big = {
        "name": "huge.bin",
        "mimeType": "application/octet-stream",
        "buffer": b"x" * (5 * 1024 * 1024 + 10),
    }
    page.get_by_label("Attachments").set_input_files([big])
    expect(page.locator("#attachments-errors")).to_contain_text("huge.bin")
    assert page.get_by_label("Attachments").evaluate("el => el.files.length") == 0
