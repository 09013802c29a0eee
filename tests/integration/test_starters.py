"""Starter templates: a new app from "Contact form" or "Feedback form" publishes and its
query sends through the workspace's dev mailbox datasource (a real SMTP server here)."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from builder.models import App, Query
from builder.publishing import publish
from builder.starters import STARTERS, starter_document
from datasources.models import Datasource
from queries.models import QueryRun

CREATE = "editor:app_create"

SUBMISSIONS = {
    "contact": (
        {"name": "Ann", "email": "ann@example.com", "message": "Call me <back>"},
        "support@kiln.test",
        "Message from Ann",
        "Thanks Ann, your message was sent.",
    ),
    "feedback": (
        {"rating": "4", "comments": "Quick and clear."},
        "feedback@kiln.test",
        "Feedback: 4 out of 5",
        "Thank you for your feedback.",
    ),
}


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def create(client, team, name: str, template: str | None):
    data = {"name": name} if template is None else {"name": name, "template": template}
    return client.post(reverse(CREATE, args=[team.workspace.slug]), data)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", ["contact", "feedback"])
def test_a_template_app_publishes_and_sends(client, team, smtp_server, settings, key):
    settings.KILN_DEVMAILBOX_PORT = smtp_server.port  # the fresh datasource goes there
    client.force_login(team.teammate)
    response = create(client, team, "Helpdesk", key)
    app = App.objects.get(workspace=team.workspace, name="Helpdesk")
    assert response.status_code == 302 and response["Location"].startswith(f"/edit/{app.slug}/")
    assert f"from the {STARTERS[key].label} template" in flash(response)[-1]
    datasource = Datasource.objects.get(workspace=team.workspace, name="Dev mailbox")
    assert datasource.config["port"] == smtp_server.port
    assert Query.objects.get(app=app).datasource == datasource

    publish(app, team.owner)
    page = app.pages.get()
    client.force_login(team.viewer)
    opened = client.get(f"/apps/{app.slug}/{page.slug}/")
    assert opened.status_code == 200 and 'id="w-form1"' in opened.text
    fields, to, subject, toast = SUBMISSIONS[key]
    response = client.post(
        f"/apps/{app.slug}/{page.slug}/events", {"widget": "form1", "event": "submit", **fields}
    )
    assert response.status_code == 200
    assert "kiln-toast-error" not in response.text, response.text
    run = QueryRun.objects.get()
    run.wait(10)
    run.refresh_from_db()
    assert run.status == "sent", run.error
    (received,) = smtp_server.wait_for(1)
    assert received.rcpt_tos == [to]
    assert received.message["Subject"] == subject
    # The page polls the run; the answer shows the success toast of the template.
    poll = client.post(
        f"/apps/{app.slug}/{page.slug}/runs/{run.pk}/poll",
        {"path": "submit-0", "trigger": "form1", **fields},
    )
    assert "kiln-toast-success" in poll.text and toast in poll.text, poll.text


def test_a_template_reuses_an_edited_dev_mailbox_datasource(client, team, settings):
    edited = Datasource.objects.create(
        workspace=team.workspace,
        name="Dev mailbox",
        kind="smtp",
        config={"host": "127.0.0.1", "port": 2525, "security": "none", "auth": "none"},
    )
    client.force_login(team.teammate)
    create(client, team, "Feedback", "feedback")
    create(client, team, "Feedback", "feedback")
    apps = App.objects.filter(workspace=team.workspace).order_by("pk")
    assert [a.name for a in apps] == ["Feedback", "Feedback (2)"]
    assert Datasource.objects.filter(workspace=team.workspace).count() == 1
    edited.refresh_from_db()
    assert edited.config["port"] == 2525
    assert {q.datasource_id for q in Query.objects.all()} == {edited.pk}


def test_blank_is_the_default_and_makes_one_empty_page(client, team):
    client.force_login(team.teammate)
    for name, template in (("One", None), ("Two", "blank")):
        response = create(client, team, name, template)
        app = App.objects.get(name=name)
        assert flash(response)[-1] == f"Created “{name}”."
        assert [p.name for p in app.pages.all()] == ["Page 1"]
        assert not app.pages.get().widgets.exists()
    assert not Datasource.objects.exists()


def test_an_unknown_template_is_refused_and_stores_nothing(client, team):
    client.force_login(team.teammate)
    response = create(client, team, "Nope", "spreadsheet")
    assert response["Location"] == f"/w/{team.workspace.slug}/apps/"
    assert flash(response) == [
        "Template: no template “spreadsheet” (choose “Blank”, “Contact form”, “Feedback form”)."
    ]
    assert not App.objects.exists() and not Datasource.objects.exists()


def test_a_viewer_cannot_create_from_a_template(client, team):
    client.force_login(team.viewer)
    response = create(client, team, "Mine", "contact")
    assert response.status_code in (403, 404)
    assert not App.objects.exists() and not Datasource.objects.exists()


def test_the_apps_page_offers_the_templates(client, team):
    client.force_login(team.teammate)
    html = client.get(reverse("editor:apps", args=[team.workspace.slug])).text
    assert '<select name="template"' in html
    for starter in STARTERS.values():
        assert f'value="{starter.key}"' in html and starter.label in html


@pytest.mark.parametrize("key", ["contact", "feedback"])
def test_template_documents_are_app_files(key):
    document = starter_document(key, "X")
    assert document["kiln"] == "app" and document["app"] == {"name": "X"}
    assert starter_document("blank", "X") is None
