"""Scheduled sends in the editors and the viewer: the query editor's Send at (saved,
checked, exported), the run_query action's own send_at (over the query's), Run in the
editor and a click in the published page that say "Scheduled" at once and poll for
nothing, and a bad send_at shown as an error under the button."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from builder.demo import create_demo_app
from builder.document import export_app, import_app
from builder.models import Query, Widget
from builder.publishing import publish
from editor import renames
from queries.models import QueryRun
from tests.integration.test_editor_queries import form_data
from tests.support.apps import mailer, make_app, welcome_inputs

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true"}
EVENT = "/apps/contact-us/contact/events"


def ahead(**delta) -> str:
    return (timezone.now() + timedelta(**delta)).replace(microsecond=0).isoformat()


@pytest.fixture
def contact(team, smtp_server):
    return make_app(team.workspace, smtp_server.port)


def save_url(app, name="send_welcome", view="query_save"):
    return reverse(f"editor:{view}", args=[app.slug, name])


def test_the_editor_saves_send_at_and_shows_a_picker(client, team, contact):
    app, query = contact
    client.force_login(team.teammate)
    when = ahead(days=1)
    response = client.post(save_url(app), form_data(query, send_at=when), headers=HTMX)
    assert response.status_code == 200
    assert Query.objects.get(pk=query.pk).send_at == when
    page = client.get(save_url(app, view="query")).text
    assert 'name="send_at"' in page and f'value="{when}"' in page
    assert 'type="datetime-local"' in page and "data-picker-for" in page


@pytest.mark.parametrize(
    ("typed", "said"), [("soon", "is not a date and time"), ("2001-01-01T10:00", "in the past")]
)
def test_the_editor_refuses_a_bad_send_at_and_keeps_the_stored_one(
    client, team, contact, typed, said
):
    app, query = contact
    query.send_at = "<< form1.data.when >>"
    query.save()
    client.force_login(team.teammate)
    response = client.post(save_url(app), form_data(query, send_at=typed), headers=HTMX)
    assert said in response.text
    assert Query.objects.get(pk=query.pk).send_at == "<< form1.data.when >>"


def test_the_editor_warns_of_an_unknown_name_in_send_at(client, team, contact):
    app, query = contact
    client.force_login(team.teammate)
    response = client.post(
        save_url(app), form_data(query, send_at="<< nobody.when >>"), headers=HTMX
    )
    assert "nobody" in response.text
    assert Query.objects.get(pk=query.pk).send_at == "<< nobody.when >>"


def test_run_in_the_editor_says_scheduled_at_once(client, team, contact, smtp_server):
    app, query = contact
    client.force_login(team.teammate)
    started = time.monotonic()
    response = client.post(
        save_url(app, view="query_run"),
        form_data(query, welcome_inputs(), send_at=ahead(hours=1)),
        headers=HTMX,
    )
    assert time.monotonic() - started < 5  # not the 15 s wait for an end
    assert "qe-badge-scheduled" in response.text and "Scheduled for" in response.text
    run = QueryRun.objects.get()
    assert run.status == "scheduled"
    # Where to cancel it: its outbox page.
    assert f"/w/{team.workspace.slug}/outbox/{run.pk}/" in response.text
    assert smtp_server.received == []


def test_send_at_goes_through_the_app_file(team, contact):
    app, query = contact
    query.send_at = "<< form1.data.when >>"
    query.save()
    document = export_app(app)
    (exported,) = document["queries"]
    assert exported["send_at"] == "<< form1.data.when >>"
    document["app"] = {"name": "Copy", "slug": "copy"}
    copy = import_app(document, team.workspace)
    assert Query.objects.get(app=copy).send_at == "<< form1.data.when >>"


def test_a_renamed_widget_is_renamed_in_send_at(client, team, contact):
    app, query = contact
    query.send_at = "<< cc_input.value >>"
    query.save()
    page = app.pages.get()
    Widget.objects.filter(page=page, name="cc_input").update(name="when_input")
    renames.widget_renamed(page, "cc_input", "when_input")
    assert Query.objects.get(pk=query.pk).send_at == "<< when_input.value >>"


# The viewer ------------------------------------------------------------------------------
@pytest.fixture
def demo(team, smtp_server):
    datasource = mailer(team.workspace, smtp_server.port)
    return create_demo_app(team.workspace, datasource, team.owner)


def schedule_the_submit(demo, team, send_at: str) -> None:
    form = Widget.objects.get(page__app=demo, name="form1")
    events = form.events
    events["submit"][0]["send_at"] = send_at
    if not send_at:
        events["submit"][0].pop("send_at")
    form.events = events
    form.save()
    publish(demo, team.owner)


def submit(client):
    return client.post(
        EVENT,
        {
            "widget": "form1",
            "event": "submit",
            "name": "Ann",
            "email": "ann@example.com",
            "message": "Hi",
        },
    )


def test_a_scheduled_click_shows_an_info_toast_and_no_poller(client, team, demo, smtp_server):
    schedule_the_submit(demo, team, ahead(hours=3))
    client.force_login(team.viewer)
    response = submit(client)
    assert response.status_code == 200
    assert "Scheduled for" in response.text
    assert "kiln-toast-info" in response.text
    assert "kiln-poller" not in response.text
    assert "was sent" not in response.text  # its on_success chain has not run
    run = QueryRun.objects.get()
    assert (run.status, run.attempts) == ("scheduled", 0)
    # A page that polls it anyway is told it is scheduled at once, and polls no more.
    started = time.monotonic()
    poll = client.post(
        f"/apps/contact-us/contact/runs/{run.pk}/poll",
        {"widget": "form1", "path": "submit-0", "trigger": "form1"},
    )
    assert "Scheduled for" in poll.text and "kiln-poller" not in poll.text
    assert time.monotonic() - started < 2  # not a long poll's wait
    assert smtp_server.received == []


def test_the_actions_send_at_overrides_the_querys(client, team, demo):
    query = Query.objects.get(app=demo)
    query.send_at = ahead(days=2)
    query.save()
    when = ahead(hours=1)
    schedule_the_submit(demo, team, when)
    client.force_login(team.viewer)
    submit(client)
    assert QueryRun.objects.get().send_at.isoformat() == when


def test_a_bad_send_at_in_the_action_shows_the_error_and_sends_nothing(
    client, team, demo, smtp_server
):
    schedule_the_submit(demo, team, "<script>alert(1)</script>")
    client.force_login(team.viewer)
    response = submit(client)
    assert "send_at" in response.text
    assert "<script>alert(1)</script>" not in response.text
    assert not QueryRun.objects.exists() and smtp_server.handler.transactions == 0


def test_the_events_pane_edits_the_run_query_send_at(client, team, demo):
    schedule_the_submit(demo, team, "")
    form = Widget.objects.get(page__app=demo, name="form1")
    assert "send_at" not in form.events["submit"][0]  # unset: not stored
    client.force_login(team.owner)
    page = form.page
    save = reverse("editor:canvas_events", args=[demo.slug, page.slug, "form1"])
    events = json.loads(json.dumps(form.events))
    events["submit"][0]["send_at"] = "<< form1.data.when >>"
    response = client.post(save, {"events_json": json.dumps(events)}, headers=HTMX)
    assert response.status_code == 200, response.text[:500]
    stored = Widget.objects.get(pk=form.pk).events["submit"][0]
    assert stored["send_at"] == "<< form1.data.when >>"


def test_an_input_send_at_reads_is_checked_before_the_run(client, team, smtp_server):
    """The widget a run_query's send_at reads has its own rules checked first, like the
    widgets the fields read: a required date left empty is a message under it."""
    app, query = make_app(team.workspace, smtp_server.port)
    query.fields = {**query.fields, "to": "ann@example.com", "cc": "", "attachments": ""}
    query.save()
    page = app.pages.get()
    Widget.objects.create(
        page=page, name="when_input", type="input", properties={"required": True}, y=6
    )
    Widget.objects.create(
        page=page,
        name="go",
        type="button",
        y=8,
        events={
            "click": [
                {"action": "run_query", "query": query.name, "send_at": "<< when_input.value >>"}
            ]
        },
    )
    publish(app, team.owner)
    client.force_login(team.teammate)
    response = client.post(f"/apps/{app.slug}/home/events", {"widget": "go", "event": "click"})
    assert 'id="when_input-errors"' in response.text and "required" in response.text
    assert not QueryRun.objects.exists()
