"""Action chains other than run_query, and query options, through the viewer."""

from __future__ import annotations

import json

import pytest

from builder.models import App, Page, Query, Widget
from builder.publishing import publish
from queries.models import QueryRun
from tests.support.apps import mailer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def app(team, smtp_server):
    datasource = mailer(team.workspace, smtp_server.port)
    app = App.objects.create(workspace=team.workspace, name="Tools", slug="tools")
    home = Page.objects.create(app=app, name="Home", slug="home")
    Page.objects.create(app=app, name="Other", slug="other")
    Widget.objects.create(
        page=home,
        name="name_in",
        type="input",
        properties={"label": "Name", "default_value": "Ann"},
    )
    Widget.objects.create(
        page=home,
        name="greeting",
        type="text",
        properties={"text": "Hello << url.who or name_in.value >>"},
    )
    Widget.objects.create(page=home, name="m1", type="modal", properties={"title": "Details"})
    buttons = {
        "toast_btn": [
            {"action": "show_toast", "kind": "info", "message": "Hi << name_in.value >>"}
        ],
        "set_btn": [{"action": "set_value", "widget": "name_in", "value": "<< 'Bob' >>"}],
        "reset_btn": [{"action": "reset_widget", "widget": "name_in"}],
        "nav_btn": [
            {"action": "navigate", "page": "other", "params": {"who": "<< name_in.value >>"}}
        ],
        "modal_btn": [{"action": "open_modal", "modal": "m1"}],
        "dl_btn": [{"action": "download", "query": "ping", "filename": "ping.json"}],
        "ping_btn": [{"action": "run_query", "query": "ping"}],
        "bad_btn": [{"action": "show_toast", "kind": "info", "message": "<< nope.x >>"}],
    }
    for name, chain in buttons.items():
        Widget.objects.create(page=home, name=name, type="button", events={"click": chain})
    Query.objects.create(
        app=app,
        name="ping",
        datasource=datasource,
        confirm_before_run=True,
        fields={"from": "a@kiln.test", "to": "b@example.com", "subject": "Ping"},
    )
    publish(app, team.owner)
    return app


def click(client, button, **data):
    return client.post(
        "/apps/tools/home/events", {"widget": button, "event": "click", "name_in": "Zoe", **data}
    )


def test_show_toast_evaluates_its_message(client, team, app):
    client.force_login(team.viewer)
    response = click(client, "toast_btn")
    assert 'class="kiln-toast kiln-toast-info"' in response.text and "Hi Zoe" in response.text


def test_set_value_and_reset_widget_rerender_the_input(client, team, app):
    client.force_login(team.viewer)
    response = click(client, "set_btn")
    assert 'id="w-name_in"' in response.text and 'hx-swap-oob="outerHTML"' in response.text
    assert 'value="Bob"' in response.text
    response = click(client, "reset_btn")
    assert 'value="Ann"' in response.text


def test_navigate_goes_to_a_page_with_parameters(client, team, app):
    client.force_login(team.viewer)
    response = click(client, "nav_btn")
    assert response["HX-Redirect"] == "/apps/tools/other/?who=Zoe"


def test_url_parameters_are_in_scope(client, team, app):
    client.force_login(team.viewer)
    assert "Hello Max" in client.get("/apps/tools/home/?who=Max").text


def test_open_modal_triggers_the_client(client, team, app):
    client.force_login(team.viewer)
    response = click(client, "modal_btn")
    assert json.loads(response["HX-Trigger"]) == {"kiln-modal": {"name": "m1", "open": True}}


def test_download_serves_the_last_run(client, team, app, smtp_server):
    client.force_login(team.viewer)
    assert "Nothing to download" in click(client, "dl_btn").text
    click(client, "ping_btn")
    response = click(client, "dl_btn")
    run = QueryRun.objects.get()
    assert response["HX-Redirect"] == f"/apps/tools/runs/{run.pk}/download?filename=ping.json"
    download = client.get(response["HX-Redirect"])
    assert download["Content-Disposition"] == 'attachment; filename="ping.json"'
    assert json.loads(download.content) == {"success": True, "message": "Email sent successfully"}
    client.force_login(team.outsider)
    assert client.get(response["HX-Redirect"]).status_code == 404


def test_a_query_that_asks_first_gets_a_confirm(client, team, app):
    client.force_login(team.viewer)
    page = client.get("/apps/tools/home/").text
    assert 'data-confirm="Are you sure you want to continue?"' in page
    assert "hx-confirm" not in page


def test_a_run_that_fails_shows_an_error_toast_without_handlers(client, team, app, smtp_server):
    smtp_server.reply_to_data("550 5.1.1 Mailbox unavailable")
    client.force_login(team.viewer)
    click(client, "ping_btn")
    run = QueryRun.objects.get()
    poll = client.post(
        f"/apps/tools/home/runs/{run.pk}/poll", {"path": "click-0", "trigger": "ping_btn"}
    )
    assert "kiln-toast-error" in poll.text and "550 5.1.1 Mailbox unavailable" in poll.text


def test_a_bad_binding_in_an_action_is_an_error_toast(client, team, app):
    client.force_login(team.viewer)
    response = click(client, "bad_btn")
    assert "kiln-toast-error" in response.text and "nope" in response.text


def test_queries_marked_run_on_page_load_run_when_the_page_opens(client, team, app, smtp_server):
    query = Query.objects.get(name="ping")
    query.run_on_page_load = True
    query.save()
    publish(app, team.owner)
    client.force_login(team.viewer)
    page = client.get("/apps/tools/home/").text
    # The GET starts nothing: the page POSTs (with its CSRF token) to start them.
    assert 'kiln-poller"' not in page and not QueryRun.objects.exists()
    assert 'hx-post="/apps/tools/home/load"' in page and 'hx-trigger="load"' in page
    started = client.post("/apps/tools/home/load")
    assert "kiln-poller" in started.text
    assert QueryRun.objects.get().status == "sent"
    assert smtp_server.received[0].message["Subject"] == "Ping"


def test_someone_elses_run_cannot_be_polled(client, team, app):
    client.force_login(team.viewer)
    click(client, "ping_btn")
    run = QueryRun.objects.get()
    client.force_login(team.teammate)
    poll = client.post(f"/apps/tools/home/runs/{run.pk}/poll", {"path": "x", "trigger": "x"})
    assert poll.status_code == 404


def test_a_poll_cannot_continue_another_chain(client, team, app):
    client.force_login(team.viewer)
    click(client, "ping_btn")
    run = QueryRun.objects.get()
    poll = client.post(
        f"/apps/tools/home/runs/{run.pk}/poll", {"path": "click-0", "trigger": "toast_btn"}
    )
    assert poll.status_code == 404
