"""What a page's plan says about its bindings (viewer.documents.plan_page): the
properties used as they are, and the names the page reads."""

from __future__ import annotations

from builder.schema import PageDocument, WidgetDocument
from viewer.documents import plan_page


def widget(name: str, properties: dict, events: dict | None = None) -> WidgetDocument:
    return WidgetDocument(name=name, type="text", properties=properties, events=events or {})


def test_a_property_without_a_binding_is_literal_and_reads_nothing():
    rows = [{"id": i, "name": f"Row {i}"} for i in range(100)]
    page = PageDocument(
        name="Home",
        slug="home",
        widgets=[
            widget("table1", {"data": rows, "page_size": 10}),
            widget("note", {"text": "Hello << user.name >>", "style": "body"}),
        ],
    )
    plan = plan_page(page)
    assert {("table1", "data"), ("table1", "page_size"), ("note", "style")} <= plan.literal
    assert ("note", "text") not in plan.literal
    assert plan.reads == {"user"}


def test_the_page_reads_the_names_of_its_properties_and_event_actions():
    toast = {"action": "show_toast", "kind": "info", "message": "Sent << send.status >>"}
    page = PageDocument(
        name="Home",
        slug="home",
        widgets=[
            widget("a", {"text": "<< table1.selected_row.email >> << url.id >>"}),
            widget("b", {"text": "<< broken. >>"}, events={"click": [toast]}),
            widget("c", {"text": r"\<< not a binding >>"}),
        ],
    )
    plan = plan_page(page)
    # A binding that does not compile reads nothing: evaluating it reports the error.
    assert plan.reads == {"table1", "url", "send"}
    assert ("c", "text") not in plan.literal  # \<< is turned into << by evaluating it
