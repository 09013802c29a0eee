"""Scheduled sends and sandbox mode in real Chromium: the query editor's date-and-time
picker fills Send at with the browser's own offset and it is saved; the events pane's
picker does the same for a run_query; a sandboxed datasource's banner shows in the
query editor and the viewer."""

from __future__ import annotations

from datetime import datetime

import pytest
from playwright.sync_api import expect

from builder.models import Query, Widget
from builder.publishing import publish
from tests.e2e.conftest import SCREENSHOTS
from tests.support.apps import make_app
from tests.support.browser import htmx_idle

pytestmark = pytest.mark.e2e

SIGN_IN = ("teammate", "teammate-pass-1")


@pytest.fixture
def berlin(browser, live_server):
    """A page in a browser whose clock is in Berlin (the server's is UTC), signed in."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="Europe/Berlin"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(SIGN_IN[0])
    page.get_by_label("Password").fill(SIGN_IN[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    yield page
    context.close()


def spread(app) -> None:
    """make_app stacks its top-level widgets at the grid's corner: the others move right."""
    Widget.objects.filter(page__app=app, name="cc_input").update(x=4)
    Widget.objects.filter(page__app=app, name="files1").update(x=8)


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def saved(query: Query, expected: str, page) -> str:
    for _ in range(60):
        query.refresh_from_db()
        if query.send_at == expected:
            break
        page.wait_for_timeout(100)
    return query.send_at


def test_the_picker_fills_send_at_with_the_browsers_offset(team, live_server, berlin):
    app, query = make_app(team.workspace, 2525)
    datasource = query.datasource
    datasource.config = {**datasource.config, "sandbox": "devmailbox"}
    datasource.save()
    page = berlin
    page.goto(f"{live_server.url}/edit/{app.slug}/queries/{query.name}/")
    expect(page.locator(".sandbox-banner")).to_contain_text("goes to the dev mailbox")
    year = datetime.now().year + 1
    picker = page.get_by_label(
        "Pick the date and time to send at, in your time zone (fills Send at)"
    )
    picker.fill(f"{year}-06-01T10:00")  # summer in Berlin: UTC+2
    expected = f"{year}-06-01T10:00+02:00"
    expect(page.locator("#id_send_at")).to_have_value(expected)
    expect(page.locator("#qe-save-status")).to_contain_text("Saved")
    assert saved(query, expected, page) == expected
    page.locator("#id_send_at").scroll_into_view_if_needed()
    screenshot(page, "query-editor-send-at")


def test_the_events_pane_picker_fills_the_run_query_send_at(team, live_server, berlin):
    app, query = make_app(team.workspace, 2525)
    form = Widget.objects.get(page__app=app, name="form1")
    form.events = {"submit": [{"action": "run_query", "query": query.name}]}
    form.save()
    spread(app)
    page = berlin
    home = app.pages.get()
    page.goto(f"{live_server.url}/edit/{app.slug}/p/{home.slug}/")
    page.locator("#cv-w-form1").click(position={"x": 10, "y": 10})
    expect(page.locator("#pf-name-input")).to_have_value("form1")
    htmx_idle(page)  # the pane's form saves on change only once htmx has processed it
    picker = page.get_by_label(
        "Pick the date and time to send at, in your time zone (fills Send at)"
    )
    year = datetime.now().year + 1
    picker.fill(f"{year}-01-15T08:30")  # winter in Berlin: UTC+1
    expected = f"{year}-01-15T08:30+01:00"
    for _ in range(60):
        form.refresh_from_db()
        if form.events["submit"][0].get("send_at") == expected:
            break
        page.wait_for_timeout(100)
    assert form.events["submit"][0]["send_at"] == expected


def test_the_viewer_shows_an_editor_the_sandbox_banner(team, live_server, berlin):
    app, query = make_app(team.workspace, 2525)
    datasource = query.datasource
    datasource.config = {
        **datasource.config,
        "sandbox": "catchall",
        "sandbox_address": "qa@kiln.test",
    }
    datasource.save()
    spread(app)
    publish(app, team.owner)
    page = berlin
    page.goto(f"{live_server.url}/apps/{app.slug}/")
    expect(page.locator(".sandbox-banner")).to_contain_text(
        "every email goes to qa@kiln.test, not to its recipients"
    )
    screenshot(page, "viewer-sandbox-banner")
