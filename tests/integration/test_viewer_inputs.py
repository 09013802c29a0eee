"""What a run reads is checked where the user types it: inputs outside the form, a Form's
own Submit button, and the confirmation a query asks for, through the viewer."""

from __future__ import annotations

import json
import re

import pytest
from django.test import RequestFactory
from pydantic import ValidationError

from builder.document import export_app
from builder.models import App, Page, Query, Widget
from builder.publishing import publish
from builder.schema import QueryDocument
from queries.models import QueryRun
from tests.support.apps import mailer
from viewer.runtime import PageRuntime

pytestmark = pytest.mark.django_db(transaction=True)

EVENT = "/apps/inbox/home/events"


@pytest.fixture
def app(team, smtp_server):
    datasource = mailer(team.workspace, smtp_server.port)
    app = App.objects.create(workspace=team.workspace, name="Inbox", slug="inbox")
    home = Page.objects.create(app=app, name="Home", slug="home")
    form1 = Widget.objects.create(
        page=home, name="form1", type="form", properties={"title": "Reply"}
    )
    Widget.objects.create(
        page=home,
        name="email",
        type="input",
        parent=form1,
        properties={"label": "Email", "required": True, "input_type": "email"},
    )
    Widget.objects.create(
        page=home,
        name="email_input",
        type="input",
        properties={"label": "Send to", "required": True, "input_type": "email"},
    )
    Widget.objects.create(
        page=home, name="plain_in", type="input", properties={"label": "Reply address"}
    )
    Widget.objects.create(page=home, name="unused_in", type="input", properties={"label": "X"})
    Widget.objects.create(
        page=home,
        name="unused_req",
        type="input",
        properties={"label": "Unrelated", "required": True},
    )
    # A form nobody wired: its own Submit button still posts.
    form2 = Widget.objects.create(
        page=home, name="form2", type="form", properties={"title": "Bare"}
    )
    Widget.objects.create(
        page=home,
        name="bare_name",
        type="input",
        parent=form2,
        properties={"label": "Name", "required": True},
    )
    # A form wired to the query that asks first.
    Widget.objects.create(
        page=home,
        name="form3",
        type="form",
        events={"submit": [{"action": "run_query", "query": "ping"}]},
    )
    buttons = {
        "send_btn": [{"action": "run_query", "query": "reply"}],
        "chain_btn": [
            {
                "action": "show_toast",
                "kind": "info",
                "message": "Starting",
            },
            {
                "action": "run_query",
                "query": "ping",
                "on_success": [{"action": "run_query", "query": "reply"}],
            },
        ],
        "plain_btn": [{"action": "run_query", "query": "plain"}],
        "ping_btn": [{"action": "run_query", "query": "ping"}],
    }
    for name, chain in buttons.items():
        Widget.objects.create(page=home, name=name, type="button", events={"click": chain})
    Query.objects.create(
        app=app,
        name="reply",
        datasource=datasource,
        fields={
            "from": "a@kiln.test",
            "to": "<< email_input.value >>",
            "set_reply_to": True,
            "reply_to": "<< form1.data.email >>",
            "subject": "Re",
        },
    )
    Query.objects.create(
        app=app,
        name="plain",
        datasource=datasource,
        fields={
            "from": "a@kiln.test",
            "to": "b@example.com",
            "set_reply_to": True,
            "reply_to": "<< plain_in.value >>",
            "subject": "Re",
        },
    )
    Query.objects.create(
        app=app,
        name="ping",
        datasource=datasource,
        confirm_before_run=True,
        confirm_message="Send the ping to everyone?",
        fields={"from": "a@kiln.test", "to": "b@example.com", "subject": "Ping"},
    )
    publish(app, team.owner)
    return app


def post(client, widget, event="click", **data):
    return client.post(EVENT, {"widget": widget, "event": event, **data})


def errors_of(html: str, name: str) -> str:
    """The text of ``<name>-errors`` as the response leaves it (the last swap wins)."""
    found = re.findall(rf'id="{name}-errors"[^>]*>((?:<div>[^<]*</div>)*)</div>', html)
    return "" if not found else re.sub(r"<[^>]+>", " ", found[-1]).strip()


# Every input a run reads ------------------------------------------------------------------
def test_a_button_outside_the_form_checks_every_input_its_query_reads(
    client, team, app, smtp_server
):
    client.force_login(team.viewer)
    response = post(client, "send_btn", email="", email_input="")
    assert response.status_code == 200
    assert "Send to is required." in errors_of(response.text, "email_input")
    # form1 is read through << form1.data.email >>: its fields are checked too.
    assert "Email is required." in errors_of(response.text, "email")
    assert "Check the highlighted fields." in response.text
    # Inputs the query does not read are left alone.
    assert 'id="unused_req-errors"' not in response.text
    # Only the messages are swapped, never the inputs (what was typed stays).
    assert 'name="email_input"' not in response.text
    assert not QueryRun.objects.exists() and smtp_server.handler.transactions == 0


def test_an_input_rule_other_than_required_is_checked_too(client, team, app, smtp_server):
    client.force_login(team.viewer)
    response = post(client, "send_btn", email="ann@example.com", email_input="not-an-email")
    assert "valid email" in errors_of(response.text, "email_input")
    assert errors_of(response.text, "email") == ""
    assert not QueryRun.objects.exists()


def test_valid_inputs_run_the_query_and_clear_old_messages(client, team, app, smtp_server):
    client.force_login(team.viewer)
    response = post(client, "send_btn", email="ann@example.com", email_input="bo@example.com")
    assert "kiln-poller" not in response.text  # ended within the click's request
    assert 'id="email_input-errors"' in response.text  # emptied
    assert errors_of(response.text, "email_input") == ""
    (received,) = smtp_server.received
    assert received.message["To"] == "bo@example.com"
    assert received.message["Reply-To"] == "ann@example.com"


def test_a_query_further_down_the_chain_has_its_inputs_checked_first(
    client, team, app, smtp_server
):
    client.force_login(team.viewer)
    response = post(client, "chain_btn", email="", email_input="")
    assert "Send to is required." in errors_of(response.text, "email_input")
    assert "Starting" not in response.text  # nothing of the chain ran
    assert not QueryRun.objects.exists() and smtp_server.handler.transactions == 0


def test_a_plugin_error_on_a_field_bound_to_an_input_shows_under_the_input(
    client, team, app, smtp_server
):
    client.force_login(team.viewer)
    response = post(client, "plain_btn", plain_in="")
    # The input has no rule of its own: the plugin's message names the query field,
    # and it shows under the input the user must fill in as well as in a toast.
    assert "Reply to email is required." in errors_of(response.text, "plain_in")
    assert "kiln-toast-error" in response.text
    assert not QueryRun.objects.exists() and smtp_server.handler.transactions == 0


def test_a_server_refusing_the_recipient_shows_under_the_input_it_came_from(
    client, team, app, smtp_server
):
    smtp_server.refuse("gone@example.com")
    client.force_login(team.viewer)
    data = {"email": "ann@example.com", "email_input": "gone@example.com"}
    post(client, "send_btn", **data)
    run = QueryRun.objects.get()
    assert run.status == "failed" and run.error_field == "to"
    poll = client.post(
        f"/apps/inbox/home/runs/{run.pk}/poll", {**data, "path": "click-0", "trigger": "send_btn"}
    )
    assert "refused" in errors_of(poll.text, "email_input")
    assert "kiln-toast-error" in poll.text


def test_a_field_read_through_a_form_maps_to_the_forms_input(app):
    request = RequestFactory().get("/apps/inbox/home/")
    request.user = app.workspace.memberships.first().user
    runtime = PageRuntime(request, app, app.versions.latest("id").app_document(), "home")
    assert runtime._widget_of_field("reply", "reply_to") == "email"
    assert runtime._widget_of_field("reply", "to") == "email_input"
    assert runtime._widget_of_field("reply", "subject") is None
    assert runtime._widget_of_field("reply", "nope") is None
    assert runtime._widget_of_field("gone", "to") is None


# The Form's own Submit -------------------------------------------------------------------
def test_a_forms_submit_button_posts_even_with_nothing_wired(client, team, app):
    client.force_login(team.viewer)
    page = client.get("/apps/inbox/home/").text
    form2 = page[page.index('id="w-form2"') :]
    submit = re.search(r"<button[^>]*kiln-form-submit[^>]*>", form2).group(0)
    assert "hx-post" in submit
    assert json.loads(re.search(r'hx-vals="([^"]*)"', submit).group(1).replace("&quot;", '"')) == {
        "widget": "form2",
        "event": "submit",
    }


def test_an_unwired_submit_still_checks_the_fields(client, team, app, smtp_server):
    client.force_login(team.viewer)
    response = post(client, "form2", "submit", bare_name="")
    assert "Name is required." in errors_of(response.text, "bare_name")
    assert "does nothing yet" not in response.text


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("viewer", "This form is not set up to send anything yet."),
        ("teammate", "This form&#x27;s Submit does nothing yet: wire its submit event"),
        ("owner", "This form&#x27;s Submit does nothing yet: wire its submit event"),
    ],
)
def test_an_unwired_submit_says_so(client, team, app, smtp_server, who, expected):
    client.force_login(getattr(team, who))
    response = post(client, "form2", "submit", bare_name="Ann")
    assert response.status_code == 200
    assert expected in response.text and "kiln-toast-info" in response.text
    assert not QueryRun.objects.exists()


def test_an_unwired_submit_in_the_preview_speaks_to_the_builder(client, team, app):
    client.force_login(team.owner)
    response = client.post(
        "/apps/inbox/preview/home/events", {"widget": "form2", "event": "submit", "bare_name": "A"}
    )
    assert "wire its submit event in the editor" in response.text


def test_other_events_without_actions_are_still_404(client, team, app):
    client.force_login(team.viewer)
    assert post(client, "unused_in", "change").status_code == 404
    assert post(client, "form2", "click").status_code == 404


# The confirmation dialog -----------------------------------------------------------------
def test_the_page_has_the_confirmation_dialog_and_the_message(client, team, app):
    client.force_login(team.viewer)
    page = client.get("/apps/inbox/home/").text
    assert '<dialog id="kiln-confirm"' in page
    assert 'data-confirm="Send the ping to everyone?"' in page
    assert "hx-confirm" not in page
    # The form wired to the query asks through its own Submit button too.
    form3 = page[page.index('id="w-form3"') :]
    assert (
        'data-confirm="Send the ping to everyone?"'
        in form3[: form3.index("</button>", form3.index("kiln-form-submit"))]
    )


def test_the_message_travels_with_the_app_document(app):
    (ping,) = [q for q in export_app(app)["queries"] if q["name"] == "ping"]
    assert ping["confirm_message"] == "Send the ping to everyone?"
    (reply,) = [q for q in export_app(app)["queries"] if q["name"] == "reply"]
    assert reply["confirm_message"] == ""


def test_a_bad_confirm_message_in_a_file_is_refused_by_name():
    with pytest.raises(ValidationError, match="confirm_message"):
        QueryDocument.model_validate(
            {"name": "q", "datasource": "d", "action": "send_email", "confirm_message": 3}
        )
    with pytest.raises(ValidationError, match="at most 200"):
        QueryDocument.model_validate(
            {"name": "q", "datasource": "d", "action": "send_email", "confirm_message": "x" * 201}
        )
