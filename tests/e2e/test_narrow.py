"""The published app on a phone (390 px wide): cells stack in reading order, nothing
scrolls sideways, and the contact form still sends."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from builder.demo import create_demo_app
from builder.models import App, Page, Widget
from builder.publishing import publish
from queries.models import QueryRun, RunStatus
from tests.support.apps import mailer

pytestmark = pytest.mark.e2e

WIDTH = 390
LONG_EMAIL = "bartholomew.featherstonehaugh-smythe@procurement.example-company.com"


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": WIDTH, "height": 844}, is_mobile=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def demo(team, smtp_server, celery_worker):
    datasource = mailer(team.workspace, smtp_server.port, timeout=3)
    return create_demo_app(team.workspace, datasource, team.owner)


def assert_no_sideways_scroll(page, step: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        """(limit) => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > limit + 1)
            .slice(0, 5).map(e => e.tagName + '.' + e.className)""",
        WIDTH,
    )
    assert width <= WIDTH, f"{step}: the page is {width} px wide in a {WIDTH} px window: {wide}"


def test_the_contact_app_on_a_phone(demo, live_server, sign_in, page, smtp_server):
    sign_in("viewer", "viewer-pass-1")
    page.goto(f"{live_server.url}/apps/contact-us/")
    expect(page.get_by_label("Your name")).to_be_visible()
    assert_no_sideways_scroll(page, "opened")
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('.kiln-grid > .kiln-cell')]
              .filter(c => c.offsetParent !== null)
              .map(c => { const r = c.getBoundingClientRect();
                          return {id: c.id, top: r.top, left: r.left, width: r.width}; })"""
    )
    grid = page.locator(".kiln-grid").bounding_box()
    assert [b["id"] for b in sorted(boxes, key=lambda b: b["top"])] == [
        "w-title",
        "w-form1",
        "w-last_result",
        "w-sent",
    ]
    for box in boxes:
        assert abs(box["width"] - grid["width"]) < 1, box  # each cell takes the full width
        assert abs(box["left"] - grid["x"]) < 1, box
    page.get_by_label("Your name").fill("Ann Example")
    page.get_by_label("Email").fill("ann@example.com")
    page.get_by_label("Message", exact=True).fill("Please call me back.")
    assert_no_sideways_scroll(page, "filled")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".kiln-toast-success")).to_contain_text(
        "Thanks Ann Example, your message was sent.", timeout=20_000
    )
    assert_no_sideways_scroll(page, "toast")
    expect(page.locator("#w-sent tbody tr")).to_have_count(1)
    assert_no_sideways_scroll(page, "table filled")
    assert smtp_server.wait_for(1)[0].rcpt_tos == ["support@kiln.test"]


def test_long_email_addresses_in_a_table_stay_readable(team, live_server, sign_in, page):
    app = App.objects.create(workspace=team.workspace, name="People", slug="people")
    home = Page.objects.create(app=app, name="Home", slug="home")
    # Five columns in a third of the page: with "overflow-wrap: anywhere" the browser
    # squeezed every column until addresses stood a few characters a line.
    rows = [
        {
            "name": "Bart",
            "email": LONG_EMAIL,
            "company": "Example Company",
            "phone": "+44 20 7946 0000",
            "status": "active",
        },
        {
            "name": "Ann",
            "email": "ann@example.com",
            "company": "Acme",
            "phone": "+1 555 0100",
            "status": "invited",
        },
    ]
    Widget.objects.create(
        page=home,
        name="people",
        type="table",
        properties={
            "data": f"<< {rows!r} >>",
            "columns": [{"key": key, "label": key.title()} for key in rows[0]],
        },
        x=0,
        y=0,
        w=4,
        h=4,
    )
    publish(app, team.owner)
    sign_in("viewer", "viewer-pass-1")
    for width in (WIDTH, 1280):
        page.set_viewport_size({"width": width, "height": 844})
        page.goto(f"{live_server.url}/apps/people/")
        cell = page.locator("#w-people tbody td", has_text="ann@example.com")
        expect(cell).to_be_visible()
        height = cell.evaluate("td => td.getBoundingClientRect().height")
        line = cell.evaluate("td => parseFloat(getComputedStyle(td).lineHeight) || 18")
        # One line (plus padding), not one character a line.
        assert height < 2 * line + 20, f"{width} px: a short address is {height} px tall"
        assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_signed_in_pages_fit_a_phone(team, live_server, sign_in, page):
    """The console on a phone: the top bar wraps, tables scroll in their own box, so no
    page is wider than the screen (it was 591 to 974 px wide in a 390 px window)."""
    app = App.objects.create(workspace=team.workspace, name="Contact us", slug="contact-us")
    datasource = mailer(team.workspace, 2525)
    QueryRun.objects.create(
        workspace=team.workspace,
        app=app,
        query_name="send_message",
        datasource=datasource,
        status=RunStatus.FAILED,
        error="Connection refused by 127.0.0.1:2525: no SMTP server is listening there.",
        fields={"to": LONG_EMAIL, "subject": "A long subject about the quarterly invoices"},
    )
    slug = team.workspace.slug
    sign_in("owner", "owner-pass-1")
    for path in (
        "/",
        f"/w/{slug}/datasources/",
        f"/w/{slug}/outbox/",
        f"/w/{slug}/audit/",
        f"/edit/{app.slug}/queries/",
    ):
        page.goto(f"{live_server.url}{path}")
        expect(page.locator(".topbar .brand")).to_be_visible()
        assert_no_sideways_scroll(page, path)
