"""A builder adds an SMTP datasource in the browser, tests it, and finds the mail it
sends in the built-in dev mailbox."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from datasources.models import Datasource
from datasources.plugins import get_plugin
from tests.support.smtp_server import free_port
from workspaces.models import Workspace

pytestmark = pytest.mark.e2e


def test_the_demo_datasource_reaches_the_dev_mailbox(
    devmailbox, live_server, sign_in, page, screenshot
):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    sign_in("demo", "kiln-demo")
    page.get_by_role("link", name="Datasources").click()
    page.locator("table.list").get_by_role("link", name="Dev mailbox").click()
    expect(page.get_by_label("Host address")).to_have_value("127.0.0.1")

    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#check-result .alert-success")).to_contain_text(
        f"Connected to 127.0.0.1:{devmailbox} successfully."
    )
    screenshot("datasource-test-connection")

    demo = Datasource.objects.get(workspace__slug="demo", name="Dev mailbox")
    get_plugin("smtp").execute(
        demo.settings(),
        "send_email",
        {
            "from": "Kiln demo <demo@kiln.test>",
            "to": "ann@example.com",
            "subject": "Welcome to Kiln",
            "body": "<h1>Hello Ann</h1><p>Your account is ready.</p>",
            "body_type": "html",
            "attachments": [{"name": "hello.txt", "type": "text/plain", "data": "data:,hi"}],
        },
    )
    page.get_by_role("navigation").get_by_role("link", name="Dev mailbox").click()
    row = page.get_by_role("link", name="Welcome to Kiln")
    expect(row).to_be_visible()
    screenshot("devmailbox-list")
    row.click()
    expect(page.get_by_text("hello.txt")).to_be_visible()
    expect(page.frame_locator("iframe.html-body").get_by_role("heading")).to_have_text("Hello Ann")
    screenshot("devmailbox-message")


def test_a_builder_creates_an_smtp_datasource(
    team, live_server, sign_in, page, smtp_server, screenshot
):
    sign_in("owner", "owner-pass-1")
    page.goto(f"{live_server.url}/w/{team.workspace.slug}/datasources/")
    page.get_by_role("link", name="New SMTP datasource").click()
    page.get_by_label("Name", exact=True).fill("Company relay")
    page.get_by_label("Host address").fill("127.0.0.1")
    page.get_by_label("Port").fill(str(smtp_server.port))
    page.get_by_label("Connection security").select_option("none")
    page.get_by_label("Username", exact=True).fill("mailer")
    # Left blank: the password is required unless "No authentication" is chosen.
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#id_password_errors")).to_have_text(
        "Password is required (or choose “No authentication”)."
    )
    expect(page.get_by_label("Host address")).to_have_value("127.0.0.1")
    assert not Datasource.objects.exists()

    page.get_by_label("No authentication").check()
    expect(page.get_by_label("Username", exact=True)).to_be_hidden()
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#check-result .alert")).to_contain_text("successfully")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved “Company relay”.")).to_be_visible()
    screenshot("datasource-form")
    assert Workspace.objects.get(pk=team.workspace.pk).datasources.get().config["auth"] == "none"

    page.get_by_label("Port").fill(str(free_port()))
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#check-result .alert-error")).to_contain_text("Connection refused")
