"""An editor finds a failed run in the outbox, opens it and sends it again once the
mail server is back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from queries.execution import create_run
from queries.models import QueryRun
from tests.support.apps import make_app, welcome_inputs
from tests.support.smtp_server import SmtpServer, free_port

pytestmark = pytest.mark.e2e


def test_an_editor_filters_the_outbox_opens_a_failed_run_and_resends_it(
    team, live_server, sign_in, page, screenshot, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.KILN_RUN_MAX_ATTEMPTS = 1
    port = free_port()
    _, query = make_app(team.workspace, port)
    failed = create_run(query, team.teammate, welcome_inputs("dora@example.com"))
    server = SmtpServer(port=port).start()
    try:
        for name in ("ann", "bob", "carol"):
            create_run(query, team.viewer, welcome_inputs(f"{name}@example.com"))
        assert QueryRun.objects.get(pk=failed.pk).status == "failed"

        sign_in("teammate", "teammate-pass-1")
        page.goto(f"{live_server.url}/w/{team.workspace.slug}/apps/")
        page.get_by_role("navigation").get_by_role("link", name="Outbox").click()
        expect(page.locator("table.outbox-runs tbody tr")).to_have_count(4)
        page.get_by_label("Status").select_option("failed")
        page.get_by_role("button", name="Filter").click()
        rows = page.locator("table.outbox-runs tbody tr")
        expect(rows).to_have_count(1)
        expect(page).to_have_url(re.compile(r"status=failed"))
        expect(rows.first).to_contain_text("dora@example.com")
        screenshot("outbox")
        page.get_by_label("Search").fill("nobody-at-all")
        expect(page.get_by_text("No runs that match these filters.")).to_be_visible()
        page.get_by_label("Search").fill("dora")
        expect(rows).to_have_count(1)

        rows.first.get_by_role("link", name=f"#{failed.pk}").click()
        expect(page.locator(".outbox-failures")).to_contain_text("refused")
        expect(page.frame_locator("iframe.html-body").locator("p")).to_contain_text("Hello Ann")
        page.get_by_role("button", name="Resend").click()
        expect(page.get_by_role("status").first).to_contain_text(
            f"Run {failed.pk} is being sent again"
        )
        expect(page.locator("h1 .run-status")).to_have_text("Sent")
        screenshot("outbox-run")

        # The app's own outbox, a tab of its editor: the resend is listed, linked.
        page.get_by_role("link", name="Contact").first.click()
        expect(page.get_by_role("navigation", name="Editor sections")).to_contain_text("Outbox")
        expect(page.locator("table.outbox-runs tbody tr")).to_have_count(5)
        expect(page.locator("table.outbox-runs tbody tr").first).to_contain_text(
            f"resends #{failed.pk}"
        )
        screenshot("outbox-app")
        assert [r.rcpt_tos for r in server.received] == [
            ["ann@example.com"],
            ["bob@example.com"],
            ["carol@example.com"],
            ["dora@example.com"],
        ]
    finally:
        server.stop()
