"""The page editor through Django's test client: adding, moving, resizing, deleting,
copy/paste, renaming, the property pane, events, undo/redo and who may do it."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest
from django.http import Http404
from django.urls import reverse

from builder.models import App, Page, PageEdit, Query, Widget
from editor.canvas import STALE_WIDGET, _record
from queries.models import QueryRun
from tests.support.apps import mailer

pytestmark = pytest.mark.django_db

# The example of docs/events.md.
DOCS_EVENTS = {
    "submit": [
        {
            "action": "run_query",
            "query": "send_message",
            "on_success": [
                {
                    "action": "show_toast",
                    "kind": "success",
                    "message": "Sent to << form1.data.email >>",
                },
                {"action": "reset_widget", "widget": "form1"},
            ],
            "on_error": [
                {
                    "action": "show_toast",
                    "kind": "error",
                    "message": "Not sent: << send_message.error >>",
                },
            ],
        }
    ]
}


@pytest.fixture
def shop(team):
    app = App.objects.create(workspace=team.workspace, name="Shop")
    page = Page.objects.create(app=app, name="Home")
    Page.objects.create(app=app, name="Thanks", position=1)
    datasource = mailer(team.workspace, 2525)
    Query.objects.create(app=app, name="send_message", datasource=datasource, fields={})
    return app, page


@pytest.fixture
def editor(client, team):
    client.force_login(team.teammate)
    return client


def url(page: Page, action: str = "", name: str = "", prop: str = "") -> str:
    args = [page.app.slug, page.slug]
    if not name:
        route = "editor:canvas" if not action else f"editor:canvas_{action}"
        return reverse(route, args=args)
    if prop:
        return reverse("editor:canvas_field", args=[*args, name, prop])
    route = "editor:canvas_widget" if not action else f"editor:canvas_{action}"
    return reverse(route, args=[*args, name])


def widget(page: Page, name: str) -> Widget:
    return page.widgets.get(name=name)


def layout(page: Page, name: str) -> tuple[int, int, int, int]:
    w = widget(page, name)
    return (w.x, w.y, w.w, w.h)


def add(client, page, type_, **data):
    response = client.post(url(page, "add"), {"type": type_, **data})
    assert response.status_code == 200, response.content
    return response


class FormFields(HTMLParser):
    """The fields of the pane's Events form, as a browser would post them."""

    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}
        self.in_form = False
        self.select: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and "ev-form" in (a.get("class") or ""):
            self.in_form = True
        if not self.in_form:
            return
        if tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""
        elif tag == "select" and a.get("name"):
            self.select = a["name"]
            self.fields.setdefault(a["name"], "")
        elif tag == "option" and self.select and "selected" in a:
            self.fields[self.select] = a.get("value") or ""
        elif tag == "textarea" and a.get("name"):
            self.textarea = a["name"]
            self.fields[a["name"]] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False
        if tag == "select":
            self.select = None
        if tag == "textarea":
            self.textarea = None

    def handle_data(self, data):
        if self.textarea:
            self.fields[self.textarea] += data


def events_form(html: str) -> dict[str, str]:
    parser = FormFields()
    parser.feed(html)
    # An empty first option ("Choose…") is what a browser posts for a select with no choice.
    return parser.fields


# The page --------------------------------------------------------------------------------
def test_the_canvas_has_the_palette_the_pages_and_the_widgets(editor, shop):
    app, page = shop
    Widget.objects.create(
        page=page, name="title", type="text", properties={"text": "Welcome"}, x=2, y=1, w=6, h=1
    )
    response = editor.get(url(page))
    assert response.status_code == 200
    html = response.text
    for label in (
        "Text",
        "Input",
        "Select",
        "Checkbox",
        "Button",
        "Form",
        "File picker",
        "Table",
        "Container",
        "Modal",
    ):
        assert f'<span class="cv-tile-label">{label}</span>' in html
    assert "pages-panel" in html and "Thanks" in html
    assert 'id="cv-w-title"' in html and "Welcome" in html
    assert 'data-x="2" data-y="1" data-w="6" data-h="1"' in html
    assert "css/editor-canvas.css" in html and "css/editor-apps.css" in html
    assert "js/canvas.js" in html
    assert "All changes saved" in html and 'data-cv-action="undo"' in html
    html = editor.get(url(page) + "?w=title").text  # opened with a widget selected
    assert 'data-selected="title"' in html and 'id="pf-text-input"' in html


def test_a_failing_binding_shows_the_widgets_warning_not_an_error(editor, shop):
    _, page = shop
    Widget.objects.create(
        page=page, name="broken", type="text", properties={"text": "<< nosuch.value >>"}
    )
    Widget.objects.create(
        page=page, name="zero", type="text", properties={"text": "<< 1 / 0 >>"}, y=1
    )
    Widget.objects.create(page=page, name="alien", type="spaceship", y=2)
    response = editor.get(url(page))
    assert response.status_code == 200
    assert response.text.count("kiln-binding-error") >= 3
    assert "Cannot draw alien" in response.text


def test_hidden_widgets_are_drawn_dimmed(editor, shop):
    _, page = shop
    Widget.objects.create(page=page, name="secret", type="text", properties={"visible": False})
    html = editor.get(url(page)).text
    assert "is-hidden" in html and 'id="cv-w-secret"' in html


# Adding ------------------------------------------------------------------------------------
def test_new_widgets_get_the_first_free_name_of_their_type(editor, shop):
    _, page = shop
    response = add(editor, page, "input", x=2, y=1)
    assert layout(page, "input1") == (2, 1, 4, 2)
    assert 'data-selected="input1"' in response.text  # the new widget is selected
    assert 'id="cv-pane"' in response.text and 'value="input1"' in response.text
    add(editor, page, "input", x=0, y=6)
    add(editor, page, "form", x=0, y=10)
    assert set(page.widgets.values_list("name", flat=True)) == {"input1", "input2", "form1"}
    editor.post(url(page, "delete", "input1"))
    add(editor, page, "input", x=6, y=0)
    assert widget(page, "input1").x == 6


def test_a_tile_clicked_adds_below_everything(editor, shop):
    _, page = shop
    Widget.objects.create(page=page, name="title", type="text", x=0, y=3, w=12, h=2)
    add(editor, page, "button")
    assert layout(page, "button1") == (0, 5, 2, 1)


def test_a_widget_dropped_into_a_container_is_its_child(editor, shop):
    _, page = shop
    add(editor, page, "form", x=0, y=0)
    add(editor, page, "input", parent="form1")
    add(editor, page, "checkbox", parent="form1")
    assert widget(page, "input1").parent.name == "form1"
    assert widget(page, "checkbox1").y > widget(page, "input1").y  # after it
    add(editor, page, "text", x=0, y=9)
    response = editor.post(url(page, "add"), {"type": "input", "parent": "text1"})
    assert response.status_code == 400
    assert "not a container" in unquote(response["X-Kiln-Error"])


def test_an_unknown_type_is_refused(editor, shop):
    _, page = shop
    response = editor.post(url(page, "add"), {"type": "rocket", "x": 0, "y": 0})
    assert response.status_code == 400
    assert not page.widgets.exists() and not PageEdit.objects.exists()


# Moving and resizing -------------------------------------------------------------------------
def test_move_and_resize(editor, shop):
    _, page = shop
    add(editor, page, "text", x=0, y=0)
    editor.post(url(page, "layout", "text1"), {"x": 3, "y": 2})
    assert layout(page, "text1") == (3, 2, 4, 1)
    response = editor.post(url(page, "layout", "text1"), {"w": 5, "h": 3})
    assert layout(page, "text1") == (3, 2, 5, 3)
    assert 'data-x="3" data-y="2" data-w="5" data-h="3"' in response.text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"x": 20, "y": 1}, (8, 1, 4, 1)),  # a move keeps the width
        ({"x": -3, "y": -5}, (0, 0, 4, 1)),
        ({"w": 40}, (2, 0, 10, 1)),  # a resize keeps x
        ({"w": 0, "h": 0}, (2, 0, 1, 1)),
        ({"x": 11, "y": 0, "w": 3}, (9, 0, 3, 1)),
    ],
)
def test_layout_is_clamped_to_the_grid(editor, shop, data, expected):
    _, page = shop
    add(editor, page, "text", x=2, y=0)
    assert editor.post(url(page, "layout", "text1"), data).status_code == 200
    assert layout(page, "text1") == expected


def test_a_new_widget_at_the_right_edge_fits(editor, shop):
    _, page = shop
    add(editor, page, "table", x=11, y=0)
    assert layout(page, "table1") == (4, 0, 8, 6)


def test_a_layout_that_is_not_a_number_is_refused(editor, shop):
    _, page = shop
    add(editor, page, "text", x=0, y=0)
    response = editor.post(url(page, "layout", "text1"), {"x": "left"})
    assert response.status_code == 400
    assert layout(page, "text1") == (0, 0, 4, 1)


def test_a_widget_dropped_on_another_pushes_it_down(editor, shop):
    _, page = shop
    add(editor, page, "text", x=0, y=0)
    add(editor, page, "button", x=0, y=4)
    editor.post(url(page, "layout", "button1"), {"x": 1, "y": 0})
    assert layout(page, "button1") == (1, 0, 2, 1)
    assert layout(page, "text1") == (0, 1, 4, 1)


def test_a_widget_moves_out_of_its_container(editor, shop):
    _, page = shop
    add(editor, page, "container", x=0, y=0)
    add(editor, page, "input", parent="container1")
    editor.post(url(page, "layout", "input1"), {"parent": "", "x": 6, "y": 0})
    assert widget(page, "input1").parent is None
    assert layout(page, "input1") == (6, 0, 4, 2)
    editor.post(url(page, "layout", "input1"), {"parent": "container1"})
    assert widget(page, "input1").parent.name == "container1"
    response = editor.post(url(page, "layout", "container1"), {"parent": "container1"})
    assert response.status_code == 400


# Deleting, copying, pasting ------------------------------------------------------------------
def test_delete_takes_the_children_along(editor, shop):
    _, page = shop
    add(editor, page, "form", x=0, y=0)
    add(editor, page, "input", parent="form1")
    response = editor.post(url(page, "delete", "form1"))
    assert response.status_code == 200
    assert not page.widgets.exists()
    assert 'data-selected=""' in response.text


def test_copy_paste_duplicates_with_a_fresh_name_below(editor, shop):
    _, page = shop
    add(editor, page, "text", x=2, y=1)
    editor.post(url(page, "property", "text1"), {"prop": "text", "value": "Hello"})
    Widget.objects.filter(name="text1").update(events={})
    assert editor.post(url(page, "copy", "text1")).status_code == 204
    response = editor.post(url(page, "paste"), {"selected": "text1"})
    assert response.status_code == 200
    copy = widget(page, "text2")
    assert (copy.x, copy.y, copy.w, copy.h) == (2, 2, 4, 1)  # right below text1
    assert copy.properties == {"text": "Hello"}
    assert 'data-selected="text2"' in response.text


def test_pasting_a_form_copies_its_fields_and_events(editor, shop):
    _, page = shop
    add(editor, page, "form", x=0, y=0)
    add(editor, page, "input", parent="form1")
    Widget.objects.filter(name="form1").update(events=DOCS_EVENTS)
    editor.post(url(page, "copy", "form1"))
    editor.post(url(page, "paste"), {"selected": "form1"})
    form2 = widget(page, "form2")
    assert form2.events == DOCS_EVENTS and form2.parent is None
    assert form2.y == 7  # below form1 (h 7)
    assert widget(page, "input2").parent == form2


def test_pasting_with_a_container_selected_puts_the_copy_inside(editor, shop):
    _, page = shop
    add(editor, page, "button", x=0, y=0)
    add(editor, page, "container", x=0, y=2)
    editor.post(url(page, "copy", "button1"))
    editor.post(url(page, "paste"), {"selected": "container1"})
    assert widget(page, "button2").parent.name == "container1"


def test_paste_with_nothing_copied_is_refused(editor, shop):
    _, page = shop
    response = editor.post(url(page, "paste"))
    assert response.status_code == 400
    assert "Nothing to paste" in unquote(response["X-Kiln-Error"])


# Renaming --------------------------------------------------------------------------------
def test_rename(editor, shop):
    _, page = shop
    add(editor, page, "input", x=0, y=0)
    add(editor, page, "text", x=6, y=0)
    response = editor.post(url(page, "rename", "input1"), {"name": "email_input"})
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#cv-pane"
    assert widget(page, "email_input").type == "input"
    for bad, message in [
        ("2fast", "is not a valid name"),
        ("user", "is reserved"),
        ("text1", "already the name of a widget"),
        ("send_message", "already the name of a query"),
    ]:
        response = editor.post(url(page, "rename", "email_input"), {"name": bad})
        assert response.status_code == 422
        assert message in response.text and message in unquote(response["X-Kiln-Error"])
    assert set(page.widgets.values_list("name", flat=True)) == {"email_input", "text1"}


# The property pane -------------------------------------------------------------------------
def test_the_pane_has_a_control_per_kind_of_property(editor, shop):
    _, page = shop
    add(editor, page, "filepicker", x=0, y=0)
    add(editor, page, "select", x=6, y=0)
    html = editor.get(url(page, name="filepicker1")).text
    assert 'id="pf-label-input"' in html  # text
    assert 'type="number" step="any" class="pf-input" id="pf-max_files-input"' in html
    assert 'type="checkbox" id="pf-multiple-input"' in html
    assert '<textarea class="pf-input pf-code" id="pf-allowed_types-input"' in html  # list
    html = editor.get(url(page, name="select1")).text
    assert '<textarea class="pf-input pf-code" id="pf-options-input"' in html  # json
    assert 'id="cv-names"' in html and '"select1.value"' in html and '"send_message.data"' in html
    add(editor, page, "text", x=0, y=4)
    html = editor.get(url(page, name="text1")).text
    assert '<select class="pf-input" id="pf-style-input"' in html
    assert '<textarea class="pf-input" id="pf-text-input"' in html  # multiline


def test_properties_are_stored_as_typed(editor, shop):
    _, page = shop
    add(editor, page, "input", x=0, y=0)
    save = url(page, "property", "input1")
    assert editor.post(save, {"prop": "label", "value": "Hi << user.name >>"}).status_code == 200
    editor.post(save, {"prop": "min", "value": "3"})
    editor.post(save, {"prop": "max", "value": "<< 2 * 5 >>"})
    editor.post(save, {"prop": "required", "value": "true"})
    editor.post(save, {"prop": "disabled"})  # an unchecked box is not posted
    editor.post(save, {"prop": "input_type", "value": "email"})
    assert widget(page, "input1").properties == {
        "label": "Hi << user.name >>",
        "min": 3,
        "max": "<< 2 * 5 >>",
        "required": True,
        "disabled": False,
        "input_type": "email",
    }
    editor.post(save, {"prop": "min", "value": ""})  # back to the default
    assert "min" not in widget(page, "input1").properties


def test_a_saved_property_redraws_the_canvas(editor, shop):
    _, page = shop
    add(editor, page, "text", x=0, y=0)
    response = editor.post(
        url(page, "property", "text1"), {"prop": "text", "value": "Hello << user.username >>"}
    )
    assert 'id="cv-grid"' in response.text and 'hx-swap-oob="true"' in response.text
    assert "Hello teammate" in response.text


def test_invalid_json_is_refused_naming_the_field(editor, shop):
    _, page = shop
    add(editor, page, "select", x=0, y=0)
    edits = PageEdit.objects.count()
    before = widget(page, "select1").properties
    response = editor.post(
        url(page, "property", "select1"), {"prop": "options", "value": '[{"label": "Red", '}
    )
    assert response.status_code == 422
    assert "Options: not valid JSON" in response.text
    assert "Options: not valid JSON" in unquote(response["X-Kiln-Error"])
    assert widget(page, "select1").properties == before
    assert PageEdit.objects.count() == edits
    red = '[{"label": "Red", "value": "r"}]'
    response = editor.post(url(page, "property", "select1"), {"prop": "options", "value": red})
    assert response.status_code == 200
    assert widget(page, "select1").properties["options"] == [{"label": "Red", "value": "r"}]
    editor.post(url(page, "property", "select1"), {"prop": "options", "value": "<< q.data >>"})
    assert widget(page, "select1").properties["options"] == "<< q.data >>"


def test_other_bad_values_are_refused(editor, shop):
    _, page = shop
    add(editor, page, "button", x=0, y=0)
    save = url(page, "property", "button1")
    assert editor.post(save, {"prop": "style", "value": "loud"}).status_code == 422
    # button_type is not bindable: a binding is not one of its choices.
    response = editor.post(save, {"prop": "button_type", "value": "<< x >>"})
    assert response.status_code == 422 and "Button type: choose one of" in response.text
    assert editor.post(save, {"prop": "nosuch", "value": "1"}).status_code == 400
    assert widget(page, "button1").properties == {}


def test_an_unknown_name_is_a_warning_in_the_save_response(editor, shop):
    _, page = shop
    add(editor, page, "text", x=0, y=0)
    typed = "Hi << usr.name >> << send_message.data >>"
    response = editor.post(url(page, "property", "text1"), {"prop": "text", "value": typed})
    assert response.status_code == 200
    assert "text1.text: unknown name &#x27;usr&#x27; in &lt;&lt; usr.name &gt;&gt;" in response.text
    assert "send_message" not in response.text.split("cv-grid")[0]  # known: no warning
    assert widget(page, "text1").properties["text"].startswith("Hi << usr.name")
    response = editor.post(url(page, "property", "text1"), {"prop": "text", "value": "<< 1 + >>"})
    assert "pf-warning" in response.text and "text1.text" in response.text
    assert not QueryRun.objects.exists()  # nothing ran


def test_a_bindable_choice_can_switch_to_a_binding(editor, shop):
    _, page = shop
    add(editor, page, "text", x=0, y=0)
    html = editor.get(url(page, name="text1", prop="style") + "?binding=1").text
    assert 'type="text" class="pf-input" id="pf-style-input"' in html
    editor.post(
        url(page, "property", "text1"),
        {"prop": "style", "value": "<< 'heading' if user.name else 'body' >>"},
    )
    html = editor.get(url(page, name="text1")).text
    assert 'class="pf pf-select is-set is-binding" id="pf-style"' in html


# Events ----------------------------------------------------------------------------------
def test_events_round_trip_in_the_documented_format(editor, shop):
    _, page = shop
    add(editor, page, "form", x=0, y=0)
    save = url(page, "events", "form1")
    response = editor.post(save, {"events_json": json.dumps(DOCS_EVENTS)})
    assert response.status_code == 200
    assert widget(page, "form1").events == DOCS_EVENTS
    # What the pane's form shows, posted back as a browser would, stores the same events.
    fields = events_form(editor.get(url(page, name="form1")).text)
    assert fields["submit-0-action"] == "run_query"
    assert fields["submit-0-query"] == "send_message"
    assert fields["submit-0-on_success-0-message"] == "Sent to << form1.data.email >>"
    assert fields["submit-0-on_error-0-kind"] == "error"
    Widget.objects.filter(name="form1").update(events={})
    assert editor.post(save, fields).status_code == 200
    assert widget(page, "form1").events == DOCS_EVENTS


def test_actions_are_added_and_removed_from_the_pane(editor, shop):
    _, page = shop
    add(editor, page, "button", x=0, y=0)
    add(editor, page, "modal", x=0, y=2)
    save = url(page, "events", "button1")
    response = editor.post(save, {"add:click": "run_query"})
    assert response["HX-Retarget"] == "#cv-events"  # the form is drawn again
    assert widget(page, "button1").events == {
        "click": [
            {"action": "run_query", "query": "send_message", "on_success": [], "on_error": []}
        ]
    }
    fields = events_form(response.text)
    for kind in ("show_toast", "open_modal", "navigate", "download", "set_value"):
        fields = events_form(editor.post(save, {**fields, "add:click-0-on_success": kind}).text)
    fields["click-0-on_success-0-message"] = "Done << nobody.name >>"
    fields["click-0-on_success-2-page"] = "thanks"
    fields["click-0-on_success-2-params"] = '{"id": "<< url.id >>"}'
    response = editor.post(save, fields)
    assert "HX-Retarget" not in response  # typing: only the warnings are swapped
    assert "unknown name &#x27;nobody&#x27;" in response.text
    success = widget(page, "button1").events["click"][0]["on_success"]
    assert success == [
        {"action": "show_toast", "kind": "success", "message": "Done << nobody.name >>"},
        {"action": "open_modal", "modal": "modal1"},
        {"action": "navigate", "page": "thanks", "params": {"id": "<< url.id >>"}},
        {"action": "download", "query": "send_message", "filename": ""},
        {"action": "set_value", "widget": "", "value": ""},
    ]
    editor.post(save, {**fields, "op": "remove:click-0-on_success-1"})
    kinds = [a["action"] for a in widget(page, "button1").events["click"][0]["on_success"]]
    assert kinds == ["show_toast", "navigate", "download", "set_value"]
    editor.post(
        save, {**events_form(editor.get(url(page, name="button1")).text), "op": "remove:click-0"}
    )
    assert widget(page, "button1").events == {}


def test_the_events_pane_warns_about_what_is_missing(editor, shop):
    _, page = shop
    add(editor, page, "button", x=0, y=0)
    Widget.objects.filter(name="button1").update(
        events={
            "click": [
                {
                    "action": "run_query",
                    "query": "gone",
                    "on_success": [],
                    "on_error": [{"action": "reset_widget", "widget": ""}],
                },
            ]
        }
    )
    html = editor.get(url(page, name="button1")).text
    assert "There is no query “gone” in this app." in html
    assert "Choose a widget." in html


def test_malformed_events_are_refused(editor, shop):
    _, page = shop
    add(editor, page, "button", x=0, y=0)
    save = url(page, "events", "button1")
    for bad in ('{"hover": []}', '{"click": [{"action": "explode"}]}', "[1, 2", '{"click": 3}'):
        assert editor.post(save, {"events_json": bad}).status_code == 400
    assert widget(page, "button1").events == {}


# Undo and redo -----------------------------------------------------------------------------
def test_undo_restores_a_deleted_widget_and_redo_deletes_it_again(editor, shop):
    _, page = shop
    add(editor, page, "form", x=1, y=2)
    add(editor, page, "input", parent="form1")
    editor.post(url(page, "property", "form1"), {"prop": "title", "value": "Contact"})
    editor.post(url(page, "events", "form1"), {"events_json": json.dumps(DOCS_EVENTS)})
    editor.post(url(page, "property", "input1"), {"prop": "label", "value": "Email"})
    editor.post(url(page, "delete", "form1"))
    assert not page.widgets.exists()

    response = editor.post(url(page, "undo"), {"selected": "form1"})
    assert response.status_code == 200 and 'id="cv-w-form1"' in response.text
    form = widget(page, "form1")
    assert (form.x, form.y, form.w, form.h) == (1, 2, 6, 7)
    assert form.properties == {"title": "Contact"} and form.events == DOCS_EVENTS
    child = widget(page, "input1")
    assert child.parent == form and child.properties == {"label": "Email"}

    editor.post(url(page, "redo"))
    assert not page.widgets.exists()
    editor.post(url(page, "undo"))
    editor.post(url(page, "undo"))  # before the input's label
    assert widget(page, "input1").properties == {"label": "Label"}


def test_a_new_change_after_undo_drops_redo(editor, shop):
    _, page = shop
    add(editor, page, "text", x=0, y=0)
    add(editor, page, "button", x=0, y=3)
    editor.post(url(page, "undo"))
    assert not page.widgets.filter(name="button1").exists()
    add(editor, page, "input", x=0, y=3)
    html = editor.post(url(page, "redo")).text
    assert set(page.widgets.values_list("name", flat=True)) == {"text1", "input1"}
    assert 'title="Redo (Ctrl+Shift+Z)" disabled' in html  # nothing to redo


def test_nothing_is_recorded_when_nothing_changed(editor, shop):
    _, page = shop
    add(editor, page, "text", x=0, y=0)
    count = PageEdit.objects.count()
    editor.post(url(page, "property", "text1"), {"prop": "text", "value": "Text"})
    editor.post(url(page, "property", "text1"), {"prop": "text", "value": "Text"})
    assert PageEdit.objects.count() == count + 1
    editor.post(url(page, "layout", "text1"), {"x": 0, "y": 0})
    assert PageEdit.objects.count() == count + 1


# Who may edit ------------------------------------------------------------------------------
def _every_endpoint(page):
    Widget.objects.create(page=page, name="text1", type="text")
    yield "get", url(page), {}
    yield "get", url(page, name="text1"), {}
    yield "get", url(page, name="text1", prop="text"), {}
    yield "post", url(page, "add"), {"type": "text", "x": 0, "y": 0}
    yield "post", url(page, "layout", "text1"), {"x": 1}
    yield "post", url(page, "property", "text1"), {"prop": "text", "value": "x"}
    yield "post", url(page, "rename", "text1"), {"name": "other"}
    yield "post", url(page, "events", "text1"), {}
    yield "post", url(page, "copy", "text1"), {}
    yield "post", url(page, "paste"), {}
    yield "post", url(page, "delete", "text1"), {}
    yield "post", url(page, "undo"), {}
    yield "post", url(page, "redo"), {}


def test_viewers_get_403(client, team, shop):
    _, page = shop
    client.force_login(team.viewer)
    for method, address, data in _every_endpoint(page):
        assert getattr(client, method)(address, data).status_code == 403, address
    assert list(page.widgets.values_list("name", flat=True)) == ["text1"]


def test_another_workspace_gets_404(client, team, shop):
    _, page = shop
    client.force_login(team.outsider)
    for method, address, data in _every_endpoint(page):
        assert getattr(client, method)(address, data).status_code == 404, address
    assert list(page.widgets.values_list("name", flat=True)) == ["text1"]


def test_admins_may_edit_and_strangers_sign_in_first(client, team, shop):
    _, page = shop
    assert client.get(url(page)).status_code == 302
    client.force_login(team.owner)
    assert client.get(url(page)).status_code == 200
    assert client.post(url(page, "add"), {"type": "text", "x": 0, "y": 0}).status_code == 200


def test_an_unknown_page_or_widget_is_404(editor, shop):
    app, page = shop
    assert editor.get(reverse("editor:canvas", args=[app.slug, "nope"])).status_code == 404
    assert editor.post(url(page, "delete", "ghost")).status_code == 404


def test_a_form_with_nothing_on_submit_is_warned_about(editor, shop):
    _, page = shop
    add(editor, page, "form", x=0, y=0)
    html = editor.get(url(page, name="form1")).text
    assert "Nothing runs when this form is submitted" in html
    Widget.objects.filter(name="form1").update(
        events={"submit": [{"action": "run_query", "query": "send_message"}]}
    )
    assert (
        "Nothing runs when this form is submitted" not in editor.get(url(page, name="form1")).text
    )


def test_an_edit_of_a_widget_replaced_meanwhile_is_a_clear_404(rf, team, shop):
    _, page = shop
    stale = Widget.objects.create(page=page, name="gone", type="text")
    Widget.objects.filter(pk=stale.pk).delete()  # an undo in another tab replaced the rows
    request = rf.post("/")
    request.user = team.teammate

    def change():
        stale.properties = {"text": "late"}
        stale.save(update_fields=["properties"])

    with pytest.raises(Http404) as caught:
        _record(request, page, "Edit gone", change)
    assert str(caught.value) == STALE_WIDGET
