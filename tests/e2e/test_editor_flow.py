"""The builder's day in real Chromium: typing a property is one undo step, renaming a
widget follows its uses, a Table dropped beside a Form sits beside it, and the query
editor shows a binding's value, "did you mean", test files and an expired session."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from builder.models import App, Page, PageEdit, Query, Widget
from tests.support.apps import mailer
from tests.support.browser import htmx_idle

pytestmark = pytest.mark.e2e

CELL = """([col, row]) => {
  const g = document.getElementById("cv-grid");
  const s = getComputedStyle(g), r = g.getBoundingClientRect();
  const cols = s.gridTemplateColumns.split(" ").map(parseFloat);
  const rows = s.gridTemplateRows.split(" ").map(parseFloat);
  const gap = parseFloat(s.columnGap), rowGap = parseFloat(s.rowGap);
  let x = r.left, y = r.top;
  for (let i = 0; i < col; i++) x += cols[i] + gap;
  for (let i = 0; i < row; i++) y += rows[i] + rowGap;
  return {x: x + cols[col] / 2, y: y + rows[row] / 2};
}"""


@pytest.fixture
def shop(team):
    app = App.objects.create(workspace=team.workspace, name="Shop")
    page = Page.objects.create(app=app, name="Home")
    datasource = mailer(app.workspace, 2525)
    query = Query.objects.create(
        app=app,
        name="send_message",
        datasource=datasource,
        fields={"to": "<< input1.value >>", "subject": "Hi << input1.valu >>"},
    )
    return app, page, query


def canvas_url(live_server, app, page) -> str:
    return f"{live_server.url}/edit/{app.slug}/p/{page.slug}/"


def test_typing_with_pauses_is_one_undo_step(shop, live_server, sign_in, page):
    app, home, _ = shop
    Widget.objects.create(page=home, name="text1", type="text", x=0, y=0, w=4, h=1)
    sign_in("teammate", "teammate-pass-1")
    page.goto(canvas_url(live_server, app, home))
    page.locator("#cv-w-text1").click()
    field = page.locator("#pf-text-input")
    expect(field).to_be_visible()
    htmx_idle(page)
    count = PageEdit.objects.count()
    field.fill("")
    for piece in ("Hello", " there", " world"):
        field.press_sequentially(piece, delay=30)
        page.wait_for_timeout(1000)  # longer than the 600 ms after which it saves
    expect(page.locator("#cv-status")).to_have_text("All changes saved")
    expect(page.locator("#cv-w-text1")).to_contain_text("Hello there world")
    assert Widget.objects.get(name="text1").properties["text"] == "Hello there world"
    assert PageEdit.objects.count() == count + 1
    page.get_by_role("button", name="Undo").click()
    expect(page.locator("#cv-w-text1")).not_to_contain_text("Hello")
    # A binding being typed is incomplete, not a warning.
    page.locator("#cv-w-text1").click()
    field = page.locator("#pf-text-input")
    htmx_idle(page)
    field.fill("")
    field.press_sequentially("Hi << user.na", delay=20)
    expect(page.locator("#pf-text-msgs")).to_contain_text("Incomplete binding")
    expect(page.locator("#pf-text-msgs .pf-warning")).to_have_count(0)
    # Signed out meanwhile: the status says so, not "you may not edit".
    htmx_idle(page)
    page.context.clear_cookies()
    field.press_sequentially("me >>", delay=20)
    status = page.locator("#cv-status")
    expect(status).to_have_text("Your session expired: sign in again")
    expect(status.get_by_role("link", name="sign in again")).to_be_visible()


def test_renaming_a_widget_follows_its_bindings_and_events(shop, live_server, sign_in, page):
    app, home, query = shop
    Widget.objects.create(page=home, name="input1", type="input", x=0, y=0, w=4, h=2)
    Widget.objects.create(
        page=home,
        name="button1",
        type="button",
        x=0,
        y=2,
        w=2,
        h=1,
        events={
            "click": [
                {
                    "action": "run_query",
                    "query": "send_message",
                    "on_success": [{"action": "reset_widget", "widget": "input1"}],
                }
            ]
        },
    )
    sign_in("teammate", "teammate-pass-1")
    page.goto(canvas_url(live_server, app, home))
    page.locator("#cv-w-input1").click()
    name = page.locator("#pf-name-input")
    expect(name).to_have_value("input1")
    htmx_idle(page)
    name.fill("email")
    name.press("Enter")
    expect(page.locator("#cv-w-email")).to_be_visible()
    expect(page.locator("#cv-status")).to_have_text("All changes saved")
    query.refresh_from_db()
    assert query.fields["to"] == "<< email.value >>"
    events = Widget.objects.get(name="button1").events
    assert events["click"][0]["on_success"][0]["widget"] == "email"


def test_a_table_dropped_beside_a_form_does_not_overlap_it(shop, live_server, sign_in, page):
    app, home, _ = shop
    form = Widget.objects.create(page=home, name="form1", type="form", x=0, y=0, w=6, h=7)
    Widget.objects.create(page=home, parent=form, name="name_input", type="input")
    sign_in("teammate", "teammate-pass-1")
    page.goto(canvas_url(live_server, app, home))
    target = page.evaluate(CELL, [7, 1])
    tile = page.locator('.cv-tile[data-type="table"]').bounding_box()
    page.mouse.move(tile["x"] + tile["width"] / 2, tile["y"] + tile["height"] / 2)
    page.mouse.down()
    page.mouse.move(target["x"], target["y"], steps=12)
    page.mouse.up()
    table = page.locator("#cv-w-table1")
    expect(table).to_be_visible()
    expect(page.locator("#cv-status")).to_have_text("All changes saved")
    stored = Widget.objects.get(name="table1")
    assert (stored.x, stored.w) == (6, 6) and stored.y <= 1
    assert (
        (form.x, form.y)
        == (0, 0)
        == tuple(Widget.objects.filter(name="form1").values_list("x", "y").get())
    )
    a = page.locator("#cv-w-form1").bounding_box()
    b = table.bounding_box()
    assert a["x"] + a["width"] <= b["x"] + 1  # side by side, not on top


def test_the_query_editor_helps_with_bindings(shop, live_server, sign_in, page):
    app, home, query = shop
    Widget.objects.create(
        page=home,
        name="input1",
        type="input",
        properties={"default_value": "ann@example.com"},
        x=0,
        y=0,
        w=4,
        h=2,
    )
    Widget.objects.create(page=home, name="files1", type="filepicker", x=4, y=0, w=4, h=2)
    sign_in("teammate", "teammate-pass-1")
    page.goto(f"{live_server.url}/edit/{app.slug}/queries/{query.name}/?defaults=1")
    # "Did you mean" under the subject.
    expect(page.locator("#msgs-subject")).to_contain_text(
        "`valu` is not a property of input1 (an Input): did you mean `value`?"
    )
    # The evaluated value, and names offered while typing.
    subject = page.locator("#id_subject")
    subject.fill("")
    subject.press_sequentially("To << inp", delay=20)
    expect(page.locator(".cv-suggest li", has_text="input1")).to_be_visible()
    page.keyboard.press("Enter")
    subject.press("End")
    subject.press_sequentially(".value|upper >>", delay=20)
    expect(page.locator("#value-subject")).to_contain_text("To ANN@EXAMPLE.COM")
    expect(page.locator("#qe-save-status")).to_contain_text("Saved")
    for _ in range(50):  # the last save comes 800 ms after the last key
        query.refresh_from_db()
        if query.fields["subject"] == "To << input1.value|upper >>":
            break
        page.wait_for_timeout(100)
    assert query.fields["subject"] == "To << input1.value|upper >>"
    htmx_idle(page)
    expect(page.locator("#msgs-subject")).not_to_contain_text("did you mean")

    # A file chosen for files1 goes into the test values.
    page.locator('[data-test-files="files1"]').set_input_files(
        files=[{"name": "note.txt", "mimeType": "text/plain", "buffer": b"hello"}]
    )
    expect(page.locator("#id_test_values")).to_have_value(
        re.compile(r'"name": "note.txt".*"data:text/plain;base64,aGVsbG8="', re.S)
    )

    # Signed out meanwhile: the status says so, with a link, and leaving asks first.
    htmx_idle(page)
    page.context.clear_cookies()
    subject.press("End")
    subject.press_sequentially(" again", delay=20)
    status = page.locator("#qe-save-status")
    expect(status).to_contain_text("Your session expired: sign in again")
    expect(status.get_by_role("link", name="sign in again")).to_have_attribute(
        "href", re.compile(r"^/accounts/login/\?next=")
    )
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.type), dialog.dismiss()))
    page.evaluate("() => { location.href = '/'; }")
    page.wait_for_timeout(500)
    assert asked == ["beforeunload"]
