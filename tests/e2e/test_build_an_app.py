"""Building an app in the browser, as a new user would: sign in, create an app, add a
datasource, drag widgets onto the canvas, write and bind a Send email query, wire the
button, preview and run the query, publish, and use the published page.

tests/e2e/test_newcomer.py walks the guide's flow (docs/guide.md) and takes its
screenshots; this one covers the rest (a file picker, a button, preview and run).
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from builder.models import App, Widget
from tests.support.browser import drag, grid_cell, htmx_idle, inside_bottom, saved
from workspaces.models import Role, Workspace

pytestmark = pytest.mark.e2e


@pytest.fixture
def newcomer(db):
    user = get_user_model().objects.create_user("nina", "nina@kiln.test", "nina-pass-123")
    workspace = Workspace.objects.create(name="Support team")
    workspace.add_member(user, Role.EDITOR)
    return user, workspace


def drop_on_grid(page, type_: str, col: int, row: int) -> None:
    drag(page, page.locator(f'.cv-tile[data-type="{type_}"]'), grid_cell(page, col, row))


def drop_in(page, type_: str, container: str) -> None:
    drag(page, page.locator(f'.cv-tile[data-type="{type_}"]'), inside_bottom(page, container))


def select(page, name: str):
    page.locator(f"#cv-w-{name}").click(position={"x": 8, "y": 8})
    expect(page.locator("#pf-name-input")).to_have_value(name)
    htmx_idle(page)


def rename(page, old: str, new: str) -> None:
    select(page, old)
    field = page.locator("#pf-name-input")
    field.fill(new)
    field.press("Enter")
    expect(page.locator(f"#cv-w-{new}")).to_be_visible()
    saved(page)


def set_prop(page, widget: str, prop: str, value: str) -> None:
    select(page, widget)
    field = page.locator(f"#pf-{prop}-input")
    field.fill(value)
    field.press("Tab")
    saved(page)


def test_a_new_user_builds_and_publishes_an_app(newcomer, live_server, sign_in, page, smtp_server):
    user, workspace = newcomer
    base = live_server.url
    sign_in("nina", "nina-pass-123")

    # Create the app.
    page.get_by_role("link", name="Apps").click()
    page.get_by_placeholder("Name of the new app").fill("Contact desk")
    page.get_by_role("button", name="+ New app").click()
    expect(page.locator("#cv-grid")).to_be_visible()
    app = App.objects.get(workspace=workspace, name="Contact desk")

    # An SMTP datasource (here: the test's own server).
    page.get_by_role("link", name="Datasources").click()
    page.get_by_role("link", name="New SMTP datasource").click()
    page.get_by_label("Name", exact=True).fill("Outbox")
    page.get_by_label("Host address").fill("127.0.0.1")
    page.get_by_label("Port").fill(str(smtp_server.port))
    page.get_by_label("Connection security").select_option("none")
    page.get_by_label("No authentication").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved “Outbox”.")).to_be_visible()

    # Drag a form with two inputs and a file picker, a button and a table.
    page.goto(f"{base}/edit/{app.slug}/")
    drop_on_grid(page, "form", 0, 0)
    expect(page.locator("#cv-w-form1")).to_be_visible()
    saved(page)
    for type_ in ("input", "input", "filepicker"):
        drop_in(page, type_, "form1")
        saved(page)
    drop_on_grid(page, "button", 7, 0)
    saved(page)
    drop_on_grid(page, "table", 1, 8)
    saved(page)
    rename(page, "input1", "name")
    rename(page, "input2", "email")
    set_prop(page, "name", "label", "Name")
    set_prop(page, "email", "label", "Email")
    set_prop(page, "filepicker1", "label", "Files")
    set_prop(page, "button1", "text", "Send")
    children = set(
        Widget.objects.filter(page__app=app, parent__name="form1").values_list("name", flat=True)
    )
    assert {"name", "email", "filepicker1"} <= children

    # A Send email query bound to the widgets.
    page.get_by_role("link", name="Queries").click()
    page.get_by_label("Name", exact=True).fill("send_note")
    page.get_by_role("button", name="Create query").click()
    page.get_by_label("From email").fill("desk@kiln.test")
    page.get_by_label("To email(s)").fill("<< email.value >>")
    page.get_by_label("Subject").fill("Note from << name.value >>")
    page.get_by_label("Body", exact=True).fill("Hello from << nmae.value >>")
    expect(page.get_by_text("unknown name 'nmae'").first).to_be_visible()
    page.get_by_label("Body", exact=True).fill("Hello from << name.value >>")
    page.get_by_label("Attachment(s)").fill("<< filepicker1.files >>")
    expect(page.locator("#qe-save-status")).to_contain_text("Saved")
    test_values = page.get_by_role("textbox", name="Test values")
    values = json.loads(test_values.input_value())
    values["email"] = {"value": "ann@example.com"}
    values["name"] = {"value": "Ann"}
    test_values.fill(json.dumps(values))

    page.get_by_role("button", name="Preview email").click()
    response = page.locator("#qe-response")
    expect(response).to_contain_text("Note from Ann")
    expect(response).to_contain_text("ann@example.com")
    assert smtp_server.handler.transactions == 0

    page.get_by_role("button", name="Run").click()
    expect(response).to_contain_text("Email sent successfully", timeout=15_000)
    assert smtp_server.received[0].rcpt_tos == ["ann@example.com"]

    # Wire the button: run the query, then a toast; the table lists the runs.
    page.get_by_role("link", name="Pages").click()
    set_prop(page, "table1", "data", "<< send_note.runs >>")
    select(page, "button1")
    page.locator('select[name="add:click"]').select_option("run_query")
    expect(page.locator('select[name="click-0-query"]')).to_have_value("send_note")
    htmx_idle(page)
    page.locator('select[name="add:click-0-on_success"]').select_option("show_toast")
    htmx_idle(page)
    page.locator('input[name="click-0-on_success-0-message"]').fill("Sent, thank you!")
    page.locator('input[name="click-0-on_success-0-message"]').press("Tab")
    saved(page)
    events = Widget.objects.get(page__app=app, name="button1").events
    assert events["click"][0]["query"] == "send_note"
    assert events["click"][0]["on_success"][0]["message"] == "Sent, thank you!"

    # Publish and use the published page.
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published version 1")).to_be_visible()
    page.goto(f"{base}/apps/{app.slug}/")
    page.get_by_label("Name", exact=True).fill("Bea")
    page.get_by_label("Email", exact=True).fill("bea@example.com")
    page.get_by_label("Files").set_input_files(
        [{"name": "hello.txt", "mimeType": "text/plain", "buffer": b"hello"}]
    )
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".kiln-toast-success")).to_contain_text("Sent, thank you!", timeout=20_000)
    expect(page.locator("#w-table1 tbody tr")).to_have_count(2)

    received = smtp_server.received[1]
    assert received.rcpt_tos == ["bea@example.com"]
    assert received.message["Subject"] == "Note from Bea"
    (attachment,) = received.message.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content()) == ("hello.txt", "hello")
