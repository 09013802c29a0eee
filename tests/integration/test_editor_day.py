"""The builder's day in the editor: one undo step per property edit, half-typed bindings,
renaming that follows the bindings, the live value and "did you mean", placement on drop."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from builder.models import PageEdit
from editor import canvas_history
from tests.integration.test_editor_canvas import add, editor, layout, shop, url, widget

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
__all__ = ["editor", "shop"]  # fixtures


def type_text(client, page, name, prop, values, *, fresh_first=True):
    for i, value in enumerate(values):
        data = {"prop": prop, "value": value}
        if i == 0 and fresh_first:
            data["fresh"] = "1"
        response = client.post(url(page, "property", name), data)
        assert response.status_code == 200, response.content


# Undo per edit -----------------------------------------------------------------------------
def test_saves_of_one_property_while_typing_are_one_undo_step(editor, shop):
    _, page = shop
    add(editor, page, "text", x=0, y=0)
    count = PageEdit.objects.count()
    type_text(editor, page, "text1", "text", ["Hel", "Hello w", "Hello world"])
    assert PageEdit.objects.count() == count + 1
    editor.post(url(page, "undo"))
    assert widget(page, "text1").properties.get("text", "Text") == "Text"
    editor.post(url(page, "redo"))
    assert widget(page, "text1").properties["text"] == "Hello world"


def test_a_new_focus_another_property_or_a_pause_start_a_new_step(editor, shop):
    _, page = shop
    add(editor, page, "text", x=0, y=0)
    count = PageEdit.objects.count()
    type_text(editor, page, "text1", "text", ["A", "AB"])
    type_text(editor, page, "text1", "text", ["ABC"])  # the field gained the focus again
    assert PageEdit.objects.count() == count + 2
    type_text(editor, page, "text1", "tooltip", ["tip"], fresh_first=False)
    assert PageEdit.objects.count() == count + 3
    type_text(editor, page, "text1", "text", ["ABCD"], fresh_first=False)
    assert PageEdit.objects.count() == count + 4  # another property came between
    old = PageEdit.objects.latest("id")
    old_time = old.created_at - timedelta(seconds=canvas_history.MERGE_SECONDS + 1)
    PageEdit.objects.filter(pk=old.pk).update(created_at=old_time)
    type_text(editor, page, "text1", "text", ["ABCDE"], fresh_first=False)
    assert PageEdit.objects.count() == count + 5  # after a long pause
    editor.post(url(page, "undo"))
    assert widget(page, "text1").properties["text"] == "ABCD"


def test_no_merge_into_an_undone_edit_and_typing_back_leaves_no_step(editor, shop):
    _, page = shop
    add(editor, page, "text", x=0, y=0)
    type_text(editor, page, "text1", "text", ["A"])
    editor.post(url(page, "undo"))
    type_text(editor, page, "text1", "text", ["B"], fresh_first=False)
    assert widget(page, "text1").properties["text"] == "B"
    count = PageEdit.objects.count()
    type_text(editor, page, "text1", "text", ["BC", "B"])
    # The step that started at "B" ended at "B": no step at all.
    assert PageEdit.objects.count() == count
    assert not PageEdit.objects.filter(undone=True).exists()


def test_a_half_typed_binding_is_saved_and_said_incomplete_not_broken(editor, shop):
    _, page = shop
    add(editor, page, "text", x=0, y=0)
    response = editor.post(url(page, "property", "text1"), {"prop": "text", "value": "Hi << use"})
    assert response.status_code == 200
    assert widget(page, "text1").properties["text"] == "Hi << use"
    assert "Incomplete binding" in response.text and "pf-warning" not in response.text
    response = editor.post(
        url(page, "property", "text1"), {"prop": "text", "value": "Hi << usr >>"}
    )
    assert "Incomplete binding" not in response.text and "unknown name" in response.text


# Renaming follows the uses -----------------------------------------------------------------
def _events(page):
    return {
        "click": [
            {
                "action": "run_query",
                "query": "send_message",
                "on_success": [
                    {"action": "show_toast", "kind": "success", "message": "To << input1.value >>"},
                    {"action": "reset_widget", "widget": "input1"},
                    {"action": "set_value", "widget": "input1", "value": "<< input1.value >>!"},
                ],
                "on_error": [
                    {"action": "show_toast", "kind": "error", "message": "<< send_message.error >>"}
                ],
            }
        ]
    }


@pytest.fixture
def wired(editor, shop):
    app, page = shop
    add(editor, page, "input", x=0, y=0)
    add(editor, page, "button", x=0, y=2)
    add(editor, page, "text", x=0, y=4)
    button = widget(page, "button1")
    button.events = _events(page)
    button.save()
    text = widget(page, "text1")
    text.properties = {
        "text": 'Hi << input1.value >> << "input1" >> << input10 >> << send_message.data >>'
    }
    text.save()
    query = app.queries.get(name="send_message")
    query.fields = {"subject": "<< input1.value|upper >>", "to": ["<< input1.value >>"]}
    query.save()
    return app, page, query


def test_renaming_a_widget_rewrites_bindings_events_and_queries_in_one_step(editor, wired):
    app, page, query = wired
    count = PageEdit.objects.count()
    response = editor.post(url(page, "rename", "input1"), {"name": "email"})
    assert response.status_code == 200
    assert widget(page, "text1").properties["text"] == (
        'Hi << email.value >> << "input1" >> << input10 >> << send_message.data >>'
    )
    chain = widget(page, "button1").events["click"][0]["on_success"]
    assert chain[0]["message"] == "To << email.value >>"
    assert chain[1]["widget"] == "email" and chain[2]["widget"] == "email"
    assert chain[2]["value"] == "<< email.value >>!"
    query.refresh_from_db()
    assert query.fields == {"subject": "<< email.value|upper >>", "to": ["<< email.value >>"]}
    assert PageEdit.objects.count() == count + 1
    editor.post(url(page, "undo"))
    assert widget(page, "text1").properties["text"].startswith("Hi << input1.value >>")
    assert widget(page, "button1").events["click"][0]["on_success"][1]["widget"] == "input1"


def test_a_refused_rename_changes_nothing(editor, wired):
    _, page, query = wired
    response = editor.post(url(page, "rename", "input1"), {"name": "send_message"})
    assert response.status_code == 422
    assert "input1" in widget(page, "text1").properties["text"]
    query.refresh_from_db()
    assert query.fields["subject"] == "<< input1.value|upper >>"


def test_renaming_a_query_rewrites_events_and_bindings(editor, wired):
    app, page, query = wired
    other = app.queries.create(
        name="log_it", datasource=query.datasource, fields={"subject": "<< send_message.data >>"}
    )
    data = {
        "name": "send_mail",
        "datasource": str(query.datasource_id),
        "timeout_seconds": str(query.timeout_seconds),
        "test_values": "{}",
    }
    response = editor.post(
        reverse("editor:query_save", args=[app.slug, "send_message"]), data, headers=HTMX
    )
    assert response.status_code == 200
    events = widget(page, "button1").events["click"][0]
    assert events["query"] == "send_mail"
    assert events["on_error"][0]["message"] == "<< send_mail.error >>"
    assert widget(page, "text1").properties["text"].endswith("<< send_mail.data >>")
    other.refresh_from_db()
    assert other.fields == {"subject": "<< send_mail.data >>"}
    page_html = editor.get(reverse("editor:query", args=[app.slug, "send_mail"])).text
    assert "are not renamed" not in page_html


# Placement on drop ---------------------------------------------------------------------------
def _overlaps(page):
    boxes = [(w.name, w.x, w.y, w.w, w.h) for w in page.widgets.filter(parent=None)]
    return [
        (a[0], b[0])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a[1] < b[1] + b[3] and b[1] < a[1] + a[3] and a[2] < b[2] + b[4] and b[2] < a[2] + a[4]
    ]


def test_a_table_dropped_beside_a_form_goes_beside_it(editor, shop):
    _, page = shop
    add(editor, page, "form", x=0, y=0)
    add(editor, page, "input", parent="form1")
    add(editor, page, "table", x=6, y=0)
    assert layout(page, "form1") == (0, 0, 6, 7)  # nothing already there moved
    assert layout(page, "table1") == (6, 0, 6, 6)  # narrowed to the free columns
    assert _overlaps(page) == []


def test_a_widget_dropped_on_others_goes_to_the_nearest_free_spot(editor, shop):
    _, page = shop
    add(editor, page, "form", x=0, y=0)
    add(editor, page, "table", x=6, y=0)
    add(editor, page, "text", x=2, y=3)  # in the middle of the form
    assert layout(page, "form1") == (0, 0, 6, 7)
    assert layout(page, "table1")[:2] == (6, 0)
    x, y, w, h = layout(page, "text1")
    assert (w, h) == (4, 1) and _overlaps(page) == []
    assert (x, y) == (2, 7)  # right under the form, where it was dropped
    add(editor, page, "table", x=0, y=2)  # no room for even half of it nearby
    assert layout(page, "table2")[1] >= 7 and _overlaps(page) == []
