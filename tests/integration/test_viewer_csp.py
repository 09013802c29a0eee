"""The viewer's markup runs under a strict Content-Security-Policy: no inline scripts,
styles or hx-on handlers in pages, event responses or poll responses."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from builder.models import App, Page, Query, Widget
from builder.publishing import publish
from queries.models import QueryRun
from tests.support.apps import mailer

pytestmark = pytest.mark.django_db(transaction=True)

INLINE = re.compile(r"hx-on|\sstyle=|<style|<script(?![^>]*\ssrc=)|\son[a-z]+=", re.I)


@pytest.fixture
def app(team, smtp_server):
    datasource = mailer(team.workspace, smtp_server.port)
    app = App.objects.create(workspace=team.workspace, name="Every widget", slug="every")
    home = Page.objects.create(app=app, name="Home", slug="home")
    form = Widget.objects.create(
        page=home,
        name="form1",
        type="form",
        x=0,
        y=0,
        w=6,
        h=8,
        properties={"show_reset": True, "title": "Form"},
    )
    Widget.objects.create(
        page=home,
        parent=form,
        name="email",
        type="input",
        properties={"label": "Email", "required": True},
    )
    Widget.objects.create(page=home, parent=form, name="files", type="filepicker")
    Widget.objects.create(page=home, parent=form, name="agree", type="checkbox")
    Widget.objects.create(page=home, parent=form, name="pick", type="select")
    Widget.objects.create(
        page=home, parent=form, name="reset_btn", type="button", properties={"button_type": "reset"}
    )
    Widget.objects.create(
        page=home,
        parent=form,
        name="submit_btn",
        type="button",
        properties={"button_type": "submit"},
    )
    Widget.objects.create(
        page=home,
        name="runs",
        type="table",
        x=6,
        y=120,
        w=6,
        h=45,
        properties={"data": "<< ping.runs >>", "searchable": True, "selectable": True},
    )
    modal = Widget.objects.create(page=home, name="m1", type="modal", properties={"title": "M"})
    Widget.objects.create(page=home, parent=modal, name="box", type="container")
    Widget.objects.create(
        page=home, name="note", type="text", x=0, y=9, properties={"text": "<< ping.status >>"}
    )
    Widget.objects.create(
        page=home,
        name="ping_btn",
        type="button",
        x=0,
        y=10,
        events={
            "click": [
                {
                    "action": "run_query",
                    "query": "ping",
                    "on_success": [
                        {"action": "show_toast", "kind": "success", "message": "Done"},
                        {"action": "reset_widget", "widget": "form1"},
                    ],
                    "on_error": [],
                },
                {"action": "show_toast", "kind": "info", "message": "Started"},
            ]
        },
    )
    form.events = {"submit": [{"action": "show_toast", "kind": "info", "message": "Hi"}]}
    form.save()
    query = Query.objects.create(
        app=app,
        name="ping",
        datasource=datasource,
        run_on_page_load=True,
        fields={"from": "a@kiln.test", "to": "b@example.com", "subject": "Ping"},
    )
    QueryRun.objects.create(
        workspace=team.workspace,
        query=query,
        created_by=team.viewer,
        status="sent",
        finished_at=timezone.now(),
    )
    publish(app, team.owner)
    return app


def assert_no_inline(html: str) -> None:
    found = INLINE.findall(html)
    assert not found, found


def test_pages_events_and_polls_have_no_inline_script_or_style(client, team, app):
    client.force_login(team.viewer)
    page = client.get("/apps/every/home/").text
    assert "kiln-poller" in page and 'class="kiln-modal-close"' in page  # what is checked
    assert 'src="/static/js/viewer.js"' in page
    assert_no_inline(page)
    # Placement is by classes: rows past the classes' range come from data attributes.
    assert re.search(
        r'class="kiln-cell kiln-cell-table kiln-x-6 kiln-w-6[^"]*" id="w-runs" '
        r'data-y="120" data-h="45"',
        page,
    )

    invalid = client.post("/apps/every/home/events", {"widget": "form1", "event": "submit"})
    assert 'id="email-errors"' in invalid.text and "kiln-toast-error" in invalid.text
    assert_no_inline(invalid.text)

    event = client.post("/apps/every/home/events", {"widget": "ping_btn", "event": "click"})
    # The run ended inside the click's request: its answer is the result, not a poller.
    assert "kiln-poller" not in event.text and "kiln-toast-info" in event.text
    assert "kiln-toast-success" in event.text and 'id="w-runs"' in event.text
    assert_no_inline(event.text)

    run = QueryRun.objects.latest("id")
    poll = client.post(
        f"/apps/every/home/runs/{run.pk}/poll", {"path": "click-0", "trigger": "ping_btn"}
    )
    assert "kiln-toast-success" in poll.text and 'id="w-form1"' in poll.text
    assert 'id="w-runs"' in poll.text and 'id="w-note"' in poll.text
    assert_no_inline(poll.text)


def test_a_page_load_poll_is_only_for_queries_run_on_page_load(client, team, app):
    client.force_login(team.viewer)
    client.get("/apps/every/home/")
    run = QueryRun.objects.latest("id")
    poll = client.post(f"/apps/every/home/runs/{run.pk}/poll", {"path": "", "trigger": ""})
    assert poll.status_code == 200 and 'id="w-note"' in poll.text
    Query.objects.filter(name="ping").update(run_on_page_load=False)
    publish(app, team.owner)
    poll = client.post(f"/apps/every/home/runs/{run.pk}/poll", {"path": "", "trigger": ""})
    assert poll.status_code == 404
