"""An admin invites a viewer, who joins through the link and uses the published app."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.test_demo_app import demo, fill_form  # noqa: F401 (a fixture)
from workspaces.models import Role

pytestmark = pytest.mark.e2e


@pytest.fixture
def mail(settings, smtp_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    return smtp_server


def test_an_invited_viewer_joins_and_uses_the_published_app(
    demo,  # noqa: F811
    mail,
    team,
    live_server,
    sign_in,
    page,
    screenshot,
):
    sign_in("owner", "owner-pass-1")
    page.get_by_role("link", name="Members").click()
    page.get_by_label("Username or email").fill("vera@example.com")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_text("Invitation sent to vera@example.com")).to_be_visible()
    link = page.get_by_label("Invitation link").input_value()
    assert link.startswith(f"{live_server.url}/invitations/")
    screenshot("members-invite")

    (received,) = [r for r in mail.wait_for(1) if r.rcpt_tos == ["vera@example.com"]]
    assert link in received.message.get_content()

    page.get_by_role("button", name="Sign out").click()
    page.goto(link)
    expect(page.get_by_role("heading", name="Join Acme")).to_be_visible()
    page.get_by_label("New username").fill("vera")
    page.get_by_label("Email").fill("vera@example.com")
    page.get_by_label("New password").fill("a-long-pass-phrase-9")
    page.get_by_role("button", name="Create my account and accept").click()
    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_text("You joined Acme as viewer.")).to_be_visible()
    assert team.workspace.role_of(team.workspace.members.get(username="vera")) == Role.VIEWER

    page.get_by_role("link", name="Open Contact us").click()
    page.wait_for_url(f"{live_server.url}/apps/contact-us/")
    fill_form(page)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".kiln-toast-success")).to_contain_text(
        "Thanks Ann Example, your message was sent.", timeout=20_000
    )

    # The editor is closed to a viewer: its canvas is a 403, and the app's editor link
    # leads to the published app instead.
    canvas = page.goto(f"{live_server.url}/edit/contact-us/p/contact/")
    assert canvas is not None and canvas.status == 403
    page.goto(f"{live_server.url}/edit/contact-us/")
    page.wait_for_url(f"{live_server.url}/apps/contact-us/")
