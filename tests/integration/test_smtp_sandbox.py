"""Sandbox mode of an SMTP datasource: catch-all (only that address receives, through
the real SMTP server, with a header naming every original recipient, Bcc included),
dev mailbox (kept in MailboxMessage, nothing reaches the server), the form's checks,
settings saved before sandbox mode existed, the run's record of its original
recipients, and the banners."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from builder.publishing import publish
from datasources.models import Datasource
from devmailbox.models import MailboxMessage
from queries.models import ApiToken, QueryRun
from queries.outbox import execute_run
from tests.integration.test_datasource_views import form_data
from tests.integration.test_editor_queries import form_data as query_form
from tests.support.apps import make_app, welcome_inputs

pytestmark = pytest.mark.django_db

HEADER = "X-Kiln-Sandbox-Original-Recipients"
CATCH_ALL = "catch@kiln.test"


@pytest.fixture
def contact(team, smtp_server):
    app, query = make_app(team.workspace, smtp_server.port)
    query.fields = {**query.fields, "bcc": "hidden@example.com"}
    query.save()
    return app, query


def sandbox(datasource: Datasource, mode: str, address: str = "") -> None:
    datasource.config = {**datasource.config, "sandbox": mode, "sandbox_address": address}
    datasource.save()


def run_it(client, app, user, **extra) -> QueryRun:
    inputs = welcome_inputs()
    inputs["cc_input"]["value"] = "carol@example.com"
    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": inputs}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {ApiToken.issue(user)[1]}"},
    )
    assert response.status_code == 202, response.json()
    run_id = response.json()["id"]
    execute_run(run_id)
    return QueryRun.objects.get(pk=run_id)


ORIGINALS = ["ann@example.com", "carol@example.com", "hidden@example.com"]


def test_catch_all_sends_only_to_that_address_and_names_the_originals(
    client, team, contact, smtp_server
):
    app, query = contact
    sandbox(query.datasource, "catchall", CATCH_ALL)
    run = run_it(client, app, team.teammate)
    assert run.status == "sent", run.error
    (received,) = smtp_server.wait_for(1)
    assert received.rcpt_tos == [CATCH_ALL]
    message = received.message
    # The headers as written, so the copy reads as the real one would...
    assert message["To"] == "ann@example.com"
    assert message["Cc"] == "carol@example.com"
    assert message["Bcc"] is None
    # ...and every original envelope recipient, Bcc included, in the sandbox's header.
    assert [a.strip() for a in message[HEADER].split(",")] == ORIGINALS
    assert run.payload_meta["sandbox"] == {
        "mode": "catchall",
        "original_recipients": ORIGINALS,
        "delivered_to": CATCH_ALL,
    }
    assert run.details["recipients"] == [CATCH_ALL]
    assert run.details["sandbox"]["original_recipients"] == ORIGINALS


def test_dev_mailbox_keeps_the_email_and_nothing_reaches_the_server(
    client, team, contact, smtp_server
):
    app, query = contact
    sandbox(query.datasource, "devmailbox")
    connections = smtp_server.handler.connections
    run = run_it(client, app, team.teammate)
    assert run.status == "sent", run.error
    (kept,) = MailboxMessage.objects.all()
    assert kept.rcpt_tos == ORIGINALS
    assert kept.subject == "Welcome, Ann!"
    assert kept.header_value(HEADER) == ", ".join(ORIGINALS)
    assert kept.header_value("Bcc") == ""
    assert run.payload_meta["sandbox"]["delivered_to"] == "dev mailbox"
    assert run.details["dev_mailbox_message"] == kept.pk
    assert smtp_server.received == []
    assert smtp_server.handler.connections == connections


def test_dev_mailbox_switched_off_fails_the_run_and_sends_nothing(
    client, team, contact, smtp_server, settings
):
    app, query = contact
    sandbox(query.datasource, "devmailbox")
    settings.KILN_DEVMAILBOX = False
    run = run_it(client, app, team.teammate)
    assert run.status == "failed"
    assert "KILN_DEVMAILBOX" in run.error
    assert smtp_server.received == [] and not MailboxMessage.objects.exists()


def test_settings_saved_before_sandbox_mode_send_as_before(client, team, contact, smtp_server):
    app, query = contact
    assert "sandbox" not in query.datasource.config
    assert query.datasource.settings().sandbox == "off"
    assert query.datasource.sandbox_note == ""
    run = run_it(client, app, team.teammate)
    assert run.status == "sent"
    assert "sandbox" not in run.payload_meta
    (received,) = smtp_server.wait_for(1)
    assert sorted(received.rcpt_tos) == ORIGINALS
    assert received.message[HEADER] is None


def test_sandbox_turned_on_before_a_scheduled_send_still_holds(client, team, contact, smtp_server):
    """The mode when the run is sent counts; one created in a sandbox stays in it."""
    app, query = contact
    datasource = query.datasource
    inputs = welcome_inputs()
    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": inputs}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {ApiToken.issue(team.teammate)[1]}"},
    )
    run_id = response.json()["id"]
    sandbox(datasource, "catchall", CATCH_ALL)  # turned on after the run was stored
    execute_run(run_id)
    assert smtp_server.wait_for(1)[0].rcpt_tos == [CATCH_ALL]
    # Created in the sandbox, then sandbox mode turned off: still not to the recipients.
    second = run_it(client, app, team.teammate)
    assert second.status == "sent"
    smtp_server.handler.received.clear()
    run = QueryRun.objects.create(
        workspace=team.workspace,
        query=query,
        datasource=datasource,
        action=second.action,
        fields=second.fields,
        payload=second.payload,
        payload_meta=second.payload_meta,
        file_count=0,
    )
    sandbox(datasource, "off")
    execute_run(run.pk)
    assert smtp_server.wait_for(1)[0].rcpt_tos == [CATCH_ALL]


def test_sandbox_note(team):
    ds = Datasource(workspace=team.workspace, name="M", kind="smtp", config={})
    assert ds.sandbox_note == ""
    ds.config = {"sandbox": "devmailbox"}
    assert ds.sandbox_note == (
        "Sandbox mode: every email goes to the dev mailbox, not to its recipients."
    )
    ds.config = {"sandbox": "catchall", "sandbox_address": CATCH_ALL}
    assert CATCH_ALL in ds.sandbox_note


# The form ------------------------------------------------------------------------------
def create_url(team):
    return reverse("datasources:create", args=[team.workspace.slug, "smtp"])


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("", "Catch-all address is required in catch-all mode."),
        ("not an address", "Catch-all address has an invalid address"),
        ("a@example.com, b@example.com", "Catch-all address takes one address, not 2."),
        ("a@example.com\r\nBcc: evil@example.com", "Catch-all address"),
    ],
)
def test_catch_all_needs_one_valid_address(client, team, address, said):
    client.force_login(team.teammate)
    response = client.post(create_url(team), form_data(sandbox="catchall", sandbox_address=address))
    assert response.status_code == 422
    assert said in response.text
    assert not Datasource.objects.exists()


def test_the_form_saves_sandbox_mode(client, team):
    client.force_login(team.teammate)
    response = client.post(
        create_url(team), form_data(sandbox="catchall", sandbox_address=f"Ops <{CATCH_ALL}>")
    )
    assert response.status_code == 302
    config = Datasource.objects.get().config
    assert (config["sandbox"], config["sandbox_address"]) == ("catchall", CATCH_ALL)


def test_dev_mailbox_mode_is_refused_when_the_dev_mailbox_is_off(client, team, settings):
    settings.KILN_DEVMAILBOX = False
    client.force_login(team.teammate)
    response = client.post(create_url(team), form_data(sandbox="devmailbox"))
    assert "The dev mailbox is switched off" in response.text
    assert not Datasource.objects.exists()


def test_an_unknown_mode_is_refused(client, team):
    client.force_login(team.teammate)
    response = client.post(create_url(team), form_data(sandbox="everyone"))
    assert "Select a valid choice" in response.text
    assert not Datasource.objects.exists()


# Banners ---------------------------------------------------------------------------------
def test_banners_in_the_datasource_pages_and_the_query_editor(client, team, contact):
    app, query = contact
    sandbox(query.datasource, "devmailbox")
    client.force_login(team.teammate)
    note = "every email goes to the dev mailbox, not to its recipients"
    edit = reverse("datasources:edit", args=[team.workspace.slug, query.datasource.pk])
    assert note in client.get(edit).text
    listed = client.get(reverse("datasources:list", args=[team.workspace.slug])).text
    assert "badge-sandbox" in listed and note in listed
    editor = client.get(reverse("editor:query", args=[app.slug, "send_welcome"])).text
    assert "sandbox-banner" in editor and note in editor


def test_the_viewer_shows_the_banner_to_editors_only(client, team, contact):
    app, query = contact
    sandbox(query.datasource, "catchall", "<b>x</b>@kiln.test")  # stored as is: escaped
    publish(app, team.owner)
    page = f"/apps/{app.slug}/"
    client.force_login(team.teammate)
    text = client.get(page).text
    assert "sandbox-banner" in text
    assert "&lt;b&gt;x&lt;/b&gt;@kiln.test" in text and "<b>x</b>" not in text
    client.force_login(team.viewer)
    assert "sandbox-banner" not in client.get(page).text


def test_no_banner_when_sandbox_mode_is_off(client, team, contact):
    app, _ = contact
    publish(app, team.owner)
    client.force_login(team.teammate)
    assert "sandbox-banner" not in client.get(f"/apps/{app.slug}/").text
    assert (
        "sandbox-banner"
        not in client.get(reverse("editor:query", args=[app.slug, "send_welcome"])).text
    )


@pytest.mark.django_db(transaction=True)
def test_run_in_the_query_editor_says_where_a_sandboxed_email_went(client, team, contact):
    app, query = contact
    sandbox(query.datasource, "devmailbox")
    client.force_login(team.teammate)
    response = client.post(
        reverse("editor:query_run", args=[app.slug, query.name]),
        query_form(query, welcome_inputs()),
        headers={"HX-Request": "true"},
    )
    assert "qe-badge-sent" in response.text
    assert "Sandbox mode: delivered to the dev mailbox, not to ann@example.com" in response.text
    assert MailboxMessage.objects.count() == 1


def test_a_utf8_catch_all_address_is_sent_with_smtputf8(client, team, contact, smtp_server):
    # The originals and the headers are ASCII: only the catch-all address needs SMTPUTF8.
    app, query = contact
    sandbox(query.datasource, "catchall", "jürgen@kiln.test")
    run = run_it(client, app, team.teammate)
    assert run.status == "sent", run.error
    assert smtp_server.wait_for(1)[0].rcpt_tos == ["jürgen@kiln.test"]
