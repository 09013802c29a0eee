"""The page editor in real Chromium: drag from the palette, move, resize, delete, undo."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from builder.models import App, Page, Widget
from tests.support.apps import mailer
from tests.support.browser import htmx_idle

pytestmark = pytest.mark.e2e

# The grid's cell (col, row) -> the centre of that cell on screen, from the grid's own
# computed tracks (the rows are 44px unless a widget makes one taller).
CELL = """([col, row]) => {
  const g = document.getElementById("cv-grid");
  const s = getComputedStyle(g), r = g.getBoundingClientRect();
  const cols = s.gridTemplateColumns.split(" ").map(parseFloat);
  const rows = s.gridTemplateRows.split(" ").map(parseFloat);
  const gap = parseFloat(s.columnGap), rowGap = parseFloat(s.rowGap);
  let x = r.left, y = r.top;
  for (let i = 0; i < col; i++) x += cols[i] + gap;
  for (let i = 0; i < row; i++) y += rows[i] + rowGap;
  return {left: x, top: y, x: x + cols[col] / 2, y: y + rows[row] / 2,
          colStep: cols[0] + gap, rowStep: rows[0] + rowGap};
}"""


@pytest.fixture
def shop(team):
    app = App.objects.create(workspace=team.workspace, name="Shop")
    page = Page.objects.create(app=app, name="Home")
    return app, page


def drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=12)
    page.mouse.up()


def centre(locator) -> tuple[float, float]:
    box = locator.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def cell(page, col: int, row: int) -> dict:
    return page.evaluate(CELL, [col, row])


def stored(name: str) -> tuple[int, int, int, int] | None:
    w = Widget.objects.filter(name=name).first()
    return (w.x, w.y, w.w, w.h) if w else None


def boxes(page) -> dict[str, dict]:
    return {name: page.locator(f"#cv-w-{name}").bounding_box() for name in ("text1", "input1")}


def test_building_a_page_with_the_mouse(shop, live_server, sign_in, page, screenshot):
    app, home = shop
    sign_in("teammate", "teammate-pass-1")
    page.goto(f"{live_server.url}/edit/{app.slug}/p/{home.slug}/")
    status = page.locator("#cv-status")
    expect(page.locator(".cv-tile")).to_have_count(10)

    # Drag a Text and an Input from the palette onto the grid.
    target = cell(page, 1, 0)
    drag(page, centre(page.locator('.cv-tile[data-type="text"]')), (target["x"], target["y"]))
    expect(page.locator("#cv-w-text1")).to_be_visible()
    expect(status).to_have_text("All changes saved")
    assert stored("text1") == (1, 0, 4, 1)
    target = cell(page, 6, 2)
    drag(page, centre(page.locator('.cv-tile[data-type="input"]')), (target["x"], target["y"]))
    expect(page.locator("#cv-w-input1")).to_be_visible()
    expect(page.locator("#cv-w-input1")).to_have_class("cv-frame is-top is-selected")
    assert stored("input1") == (6, 2, 4, 2)

    # Move the text two columns right and five rows down, by dragging its frame.
    text = page.locator("#cv-w-text1")
    step = cell(page, 0, 0)
    x, y = centre(text)
    drag(page, (x, y), (x + 2 * step["colStep"], y + 5 * step["rowStep"]))
    expect(text).to_have_attribute("data-x", "3")
    expect(text).to_have_attribute("data-y", "5")
    assert stored("text1") == (3, 5, 4, 1)

    # Resize the input by its corner handle: two columns wider, one row taller.
    frame = page.locator("#cv-w-input1")
    frame.hover()
    handle = frame.locator(".cv-handle")
    x, y = centre(handle)
    drag(page, (x, y), (x + 2 * step["colStep"], y + step["rowStep"]))
    expect(frame).to_have_attribute("data-w", "6")
    expect(frame).to_have_attribute("data-h", "3")
    expect(status).to_have_text("All changes saved")
    assert stored("input1") == (6, 2, 6, 3)

    # What is stored is what was on screen: the same after a reload.
    before = boxes(page)
    page.reload()
    after = boxes(page)
    for name in before:
        for key in ("x", "y", "width", "height"):
            assert abs(before[name][key] - after[name][key]) < 1, (name, key)
    for name, (col, row) in {"text1": (3, 5), "input1": (6, 2)}.items():
        where = cell(page, col, row)
        assert (
            abs(after[name]["x"] - where["left"]) < 1 and abs(after[name]["y"] - where["top"]) < 1
        )
    assert stored("text1") == (3, 5, 4, 1) and stored("input1") == (6, 2, 6, 3)

    # Delete with the Delete key, bring it back with Undo.
    Widget.objects.filter(name="text1").update(properties={"text": "Hello there"})
    page.reload()
    page.locator("#cv-w-text1").click()
    expect(page.locator("#cv-pane .cv-pane-type")).to_have_text("Text")
    htmx_idle(page)
    page.keyboard.press("Delete")
    expect(page.locator("#cv-w-text1")).to_have_count(0)
    expect(status).to_have_text("All changes saved")
    assert stored("text1") is None
    page.get_by_role("button", name="Undo").click()
    expect(page.locator("#cv-w-text1")).to_contain_text("Hello there")
    assert stored("text1") == (3, 5, 4, 1)
    assert Widget.objects.get(name="text1").properties == {"text": "Hello there"}

    # The pane of the selected input, with a binding being typed.
    page.locator("#cv-w-input1").click()
    label = page.locator("#pf-label-input")
    expect(label).to_have_value("Label")
    htmx_idle(page)
    label.fill("Email for << us")
    expect(page.locator(".cv-suggest li", has_text="user")).to_be_visible()
    page.keyboard.press("Enter")
    label.press("End")
    label.type(".email >>")
    expect(page.locator("#cv-w-input1")).to_contain_text("Email for teammate@kiln.test")
    expect(status).to_have_text("All changes saved")
    assert Widget.objects.get(name="input1").properties["label"] == "Email for << user.email >>"
    screenshot("editor-canvas")


def test_keyboard_copy_paste_undo_redo(shop, live_server, sign_in, page):
    app, home = shop
    Widget.objects.create(
        page=home, name="title", type="text", properties={"text": "Hi"}, x=0, y=0, w=6, h=1
    )
    sign_in("teammate", "teammate-pass-1")
    page.goto(f"{live_server.url}/edit/{app.slug}/p/{home.slug}/")
    page.locator("#cv-w-title").click()
    expect(page.locator("#pf-name-input")).to_have_value("title")
    htmx_idle(page)
    page.locator("#cv-w-title").click()  # focus back on the canvas
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    expect(page.locator("#cv-w-text1")).to_contain_text("Hi")
    assert stored("text1") == (0, 1, 6, 1)
    page.keyboard.press("Control+z")
    expect(page.locator("#cv-w-text1")).to_have_count(0)
    page.keyboard.press("Control+Shift+z")
    expect(page.locator("#cv-w-text1")).to_have_count(1)
    # Typing in the pane is not a shortcut: Backspace edits the name, not the canvas.
    page.locator("#cv-w-text1").click()
    name = page.locator("#pf-name-input")
    name.click()
    name.press("End")
    name.press("Backspace")
    expect(page.locator("#cv-w-text1")).to_have_count(1)
    name.fill("greeting")
    name.press("Enter")
    expect(page.locator("#cv-w-greeting")).to_be_visible()
    assert stored("greeting") == (0, 1, 6, 1)


def test_a_form_takes_dropped_fields_and_its_events_are_wired_in_the_pane(
    shop, live_server, sign_in, page, screenshot
):
    from builder.models import Query

    app, home = shop
    datasource = mailer(app.workspace, 2525)
    Query.objects.create(app=app, name="send_message", datasource=datasource, fields={})
    form = Widget.objects.create(
        page=home, name="form1", type="form", x=0, y=0, w=6, h=7, properties={"title": "Contact us"}
    )
    Widget.objects.create(
        page=home, parent=form, name="email", type="input", properties={"label": "Email"}
    )
    Widget.objects.create(
        page=home,
        name="note",
        type="text",
        x=6,
        y=0,
        w=6,
        h=1,
        properties={"text": "<< send_message.data.message >>"},
    )
    sign_in("teammate", "teammate-pass-1")
    page.goto(f"{live_server.url}/edit/{app.slug}/p/{home.slug}/")

    # A field dropped on the form goes inside it, after its other fields.
    frame = page.locator("#cv-w-form1")
    box = frame.bounding_box()
    drag(
        page,
        centre(page.locator('.cv-tile[data-type="checkbox"]')),
        (box["x"] + box["width"] / 2, box["y"] + box["height"] - 90),
    )
    expect(frame.locator("#cv-w-checkbox1")).to_be_visible()
    assert Widget.objects.get(name="checkbox1").parent_id == form.pk

    # Wire its submit: run send_message, then a toast.
    page.mouse.click(*centre(frame.locator(".kiln-form-title")))
    expect(page.locator("#cv-pane .cv-pane-type")).to_have_text("Form")
    htmx_idle(page)
    page.locator('select[name="add:submit"]').select_option("run_query")
    expect(page.locator('select[name="submit-0-query"]')).to_have_value("send_message")
    htmx_idle(page)
    page.locator('select[name="add:submit-0-on_success"]').select_option("show_toast")
    htmx_idle(page)
    message = page.locator('input[name="submit-0-on_success-0-message"]')
    message.press_sequentially("Sent to << fom1.data.email >>")
    expect(page.locator("#ev-warn-submit-0-on_success-0")).to_contain_text("unknown name")
    expect(page.locator("#cv-status")).to_have_text("All changes saved")
    events = Widget.objects.get(name="form1").events
    assert events == {
        "submit": [
            {
                "action": "run_query",
                "query": "send_message",
                "on_success": [
                    {
                        "action": "show_toast",
                        "kind": "success",
                        "message": "Sent to << fom1.data.email >>",
                    }
                ],
                "on_error": [],
            }
        ]
    }
    page.locator("#cv-events").scroll_into_view_if_needed()
    screenshot("editor-canvas-events")
