"""A published version is frozen: the viewer and the run API run a query with the
datasource, action, fields and timeout it was published with, whatever the draft says."""

from __future__ import annotations

import json

import pytest

from builder.document import AppDocument, export_app, import_app
from builder.models import Widget
from builder.publishing import publish
from datasources.models import Datasource
from queries.execution import create_run
from queries.models import ApiToken, QueryRun
from queries.outbox import execute_run
from tests.support.apps import mailer, make_app, welcome_inputs
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def contact(team, smtp_server):
    app, query = make_app(team.workspace, smtp_server.port)
    page = app.pages.get()
    Widget.objects.create(
        page=page,
        name="submit",
        type="button",
        parent=page.widgets.get(name="form1"),
        events={"click": [{"action": "run_query", "query": "send_welcome"}]},
    )
    # Fixed values, so that the viewer and the API send the same message.
    query.fields = {"from": "app@kiln.test", "to": "ann@example.com", "subject": "Welcome, Ann!"}
    query.timeout_seconds = 45
    query.save()
    publish(app, team.owner)
    return app, query


@pytest.fixture
def other_server(smtp_factory):
    return smtp_factory()


def _move_draft(query, team, port: int) -> Datasource:
    """Points the draft query at another datasource, with another timeout and subject."""
    other = mailer(team.workspace, port, name="Other mailer")
    query.datasource = other
    query.timeout_seconds = 7
    query.fields = {**query.fields, "subject": "Draft subject"}
    query.save()
    return other


def _click(client, app):
    return client.post(
        f"/apps/{app.slug}/home/events",
        {
            "widget": "submit",
            "event": "click",
            "name_input": "Ann",
            "email_input": "ann@example.com",
            "message_input": "Hi",
        },
    )


def _api(client, app, token):
    return client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": welcome_inputs()}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_the_viewer_runs_the_published_datasource_and_timeout(
    client, team, contact, smtp_server, other_server
):
    app, query = contact
    published_source = query.datasource
    _move_draft(query, team, other_server.port)

    client.force_login(team.viewer)
    assert _click(client, app).status_code == 200

    run = QueryRun.objects.get()
    assert run.status == "sent", run.error
    assert run.datasource == published_source
    assert (run.action, run.timeout_seconds) == ("send_email", 45)
    (received,) = smtp_server.received
    assert received.message["Subject"] == "Welcome, Ann!"
    assert other_server.received == []


def test_the_run_api_runs_the_published_query(client, team, contact, smtp_server, other_server):
    app, query = contact
    published_source = query.datasource
    _move_draft(query, team, other_server.port)
    token = ApiToken.issue(team.teammate)[1]

    response = _api(client, app, token)

    assert response.status_code == 202, response.json()
    run = QueryRun.objects.get()
    assert run.datasource == published_source and run.timeout_seconds == 45
    assert [r.message["Subject"] for r in smtp_server.received] == ["Welcome, Ann!"]
    assert other_server.received == []


def test_after_the_next_publish_the_draft_runs(client, team, contact, smtp_server, other_server):
    app, query = contact
    other = _move_draft(query, team, other_server.port)
    publish(app, team.owner)
    token = ApiToken.issue(team.teammate)[1]

    assert _api(client, app, token).status_code == 202

    run = QueryRun.objects.get()
    assert run.datasource == other and run.timeout_seconds == 7
    assert [r.message["Subject"] for r in other_server.received] == ["Draft subject"]


def test_the_editor_runs_the_draft(team, contact, other_server):
    _, query = contact
    other = _move_draft(query, team, other_server.port)

    # What the query editor's Run button calls: no published copy, so the draft runs.
    create_run(query, team.teammate, welcome_inputs())

    run = QueryRun.objects.get()
    assert run.datasource == other and run.timeout_seconds == 7


@pytest.mark.parametrize("change", ["delete", "rename"])
def test_a_published_datasource_that_is_gone_is_a_clear_error(
    client, team, contact, smtp_server, other_server, change
):
    app, query = contact
    published_source = query.datasource
    _move_draft(query, team, other_server.port)  # so that the old one may be deleted
    if change == "delete":
        published_source.delete()
    else:
        published_source.name = "Renamed mailer"
        published_source.save()
    name = f"Mailer {smtp_server.port}"
    token = ApiToken.issue(team.teammate)[1]

    response = _api(client, app, token)
    assert response.status_code == 400
    assert response.json()["field"] == "datasource"
    assert f"“{name}”" in response.json()["error"]

    client.force_login(team.viewer)
    response = _click(client, app)
    assert response.status_code == 200
    assert "kiln-toast-error" in response.text and name in response.text
    assert not QueryRun.objects.exists()
    assert smtp_server.received == [] and other_server.received == []


def test_a_query_not_yet_published_is_not_in_the_api(client, team, contact):
    app, query = contact
    query.pk = None
    query.name = "send_later"
    query.save()
    token = ApiToken.issue(team.teammate)[1]

    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_later/runs",
        json.dumps({"inputs": welcome_inputs()}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 404
    assert "publish" in response.json()["error"]
    assert not QueryRun.objects.exists()


def test_a_run_whose_datasource_was_deleted_before_sending_fails(team, contact, settings):
    app, query = contact
    run = QueryRun.objects.create(
        workspace=team.workspace,
        query=query,
        datasource=None,
        action="send_email",
        fields={"from": "a@kiln.test", "to": "b@example.com", "subject": "Lost"},
    )
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "datasource" in run.error


def test_the_published_version_is_a_typed_document(team, contact):
    app, _ = contact
    version = app.versions.get()
    document = version.app_document()
    assert isinstance(document, AppDocument)
    frozen = document.query("send_welcome")
    assert frozen.datasource == next(iter(d.name for d in document.datasources))
    assert (frozen.action, frozen.timeout_seconds) == ("send_email", 45)
    assert document.pages[0].widgets[0].name == "form1"


def test_export_import_export_is_the_same_document(team, contact):
    app, _ = contact
    # The first import fills in the settings the datasource left out (their defaults);
    # from then on a round trip changes nothing.
    first = export_app(import_app(export_app(app), team.other_workspace, environ={}))
    third = Workspace.objects.create(name="Third")
    second = export_app(import_app(json.loads(json.dumps(first)), third, environ={}))
    assert first["app"].pop("slug") != second["app"].pop("slug")  # unique across Kiln
    assert second == first
    assert AppDocument.model_validate(second) == AppDocument.model_validate(first)


def test_a_file_without_optional_keys_round_trips(team):
    document = {
        "kiln": "app",
        "version": 1,
        "app": {"name": "Bare"},
        "pages": [{"name": "Home", "widgets": [{"name": "t1", "type": "text"}]}],
    }
    app = import_app(document, team.workspace, environ={})
    exported = export_app(app)
    widget = {"name": "t1", "type": "text", "parent": None, "properties": {}, "events": {}}
    widget.update(x=0, y=0, w=4, h=1)
    assert exported["pages"][0] == {
        "name": "Home",
        "slug": "home",
        "position": 0,
        "widgets": [widget],
    }
    again = import_app(exported, team.other_workspace, environ={})
    assert export_app(again)["pages"] == exported["pages"]
