"""Every page a user meets loads under the strict Content-Security-Policy with no
violation: sign-in, home, apps list, canvas, query editor, datasource pages, the dev
mailbox, the app's Sharing page, a published app with a run, the outbox pages, and a
public app opened without signing in (docs/security.md, "Headers and CSP")."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from builder.demo import create_demo_app
from devmailbox.models import MailboxMessage
from queries.models import QueryRun
from tests.e2e.conftest import SCREENSHOTS
from tests.support.apps import mailer
from tests.support.browser import htmx_idle

pytestmark = pytest.mark.e2e

# Runs before any script of each page: records what the browser refuses.
RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    [e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber, e.sample].join(" | ")
  );
});
"""

MAIL = (
    b"From: Kiln <app@kiln.test>\r\nTo: ann@example.com\r\nSubject: Hello\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p style='color:red'>Hi <b>Ann</b></p><script>alert(1)</script>\r\n"
)


@pytest.fixture
def demo(team, smtp_server, celery_worker):
    datasource = mailer(team.workspace, smtp_server.port, timeout=3)
    app = create_demo_app(team.workspace, datasource, team.owner)
    team.owner.is_staff = True
    team.owner.save()
    return app, datasource


class Watch:
    """Console messages about the policy, and the violations each page recorded."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        self.violations: list[str] = []
        page.add_init_script(RECORDER)
        page.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def collect(self) -> None:
        found = self.page.evaluate("() => window.__cspViolations || []")
        self.violations.extend(f"{self.page.url}: {v}" for v in found)

    def visit(self, url: str) -> int:
        self.collect()
        response = self.page.goto(url)
        self.page.wait_for_load_state("networkidle")
        htmx_idle(self.page)
        return response.status if response else 0

    def assert_clean(self) -> None:
        self.collect()
        assert self.violations == [], "\n".join(self.violations)
        assert self.console == [], "\n".join(self.console)


def send_contact_form(page) -> None:
    page.get_by_label("Your name").fill("Ann Example")
    page.get_by_label("Email").fill("ann@example.com")
    page.get_by_label("Message", exact=True).fill("Please call me back.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".kiln-toast-success")).to_contain_text(
        "your message was sent", timeout=20_000
    )


def test_every_page_loads_with_no_csp_violation(demo, live_server, page, browser, team):
    app, datasource = demo
    base = live_server.url
    message = MailboxMessage.receive("app@kiln.test", ["ann@example.com"], MAIL)
    watch = Watch(page)

    watch.visit(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill("owner-pass-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    ws = team.workspace.slug
    for path in (
        "/",
        f"/w/{ws}/apps/",
        f"/edit/{app.slug}/",
        f"/edit/{app.slug}/queries/",
        f"/edit/{app.slug}/queries/send_message/",
        f"/edit/{app.slug}/public",
        f"/w/{ws}/datasources/",
        f"/w/{ws}/datasources/new/smtp/",
        f"/w/{ws}/datasources/{datasource.pk}/",
        "/devmailbox/",
        f"/devmailbox/{message.pk}/",
        "/workspaces/new",
        f"/w/{ws}/members/",
        f"/w/{ws}/audit/",
    ):
        assert watch.visit(f"{base}{path}") == 200, path
    page.screenshot(path=str(SCREENSHOTS / "audit-log.png"), full_page=True)
    # Test connection answers under the policy (htmx, no inline handler).
    watch.visit(f"{base}/w/{ws}/datasources/{datasource.pk}/")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#check-result .alert")).to_be_visible()

    # The published app, with a run and its poll.
    watch.visit(f"{base}/apps/{app.slug}/")
    send_contact_form(page)
    htmx_idle(page)

    # The outbox pages, the run's HTML body in its sandboxed frame, a filter by htmx.
    run = QueryRun.objects.latest("pk")
    for path in (f"/w/{ws}/outbox/", f"/edit/{app.slug}/outbox/", f"/w/{ws}/outbox/{run.pk}/"):
        assert watch.visit(f"{base}{path}") == 200, path
    watch.visit(f"{base}/w/{ws}/outbox/")
    page.get_by_label("Status").select_option("sent")
    expect(page.locator("table.outbox-runs tbody tr")).to_have_count(1)
    htmx_idle(page)

    # The app made public, opened by a visitor who has not signed in.
    page.get_by_role("button", name="Sign out").click()
    app.public = True
    app.save()
    watch.visit(f"{base}/apps/{app.slug}/")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    send_contact_form(page)
    htmx_idle(page)
    watch.assert_clean()


def test_the_recorder_sees_a_violation(live_server, page, transactional_db):
    # The check above would pass vacuously if nothing were recorded: an inline style
    # added to a Kiln page must be caught.
    watch = Watch(page)
    watch.visit(f"{live_server.url}/accounts/login/")
    page.evaluate(
        "() => { const s = document.createElement('style');"
        " s.textContent = 'body { color: red }'; document.head.appendChild(s); }"
    )
    page.wait_for_timeout(200)
    watch.collect()
    assert any("style-src" in v for v in watch.violations)
