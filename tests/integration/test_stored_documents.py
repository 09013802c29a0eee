"""What Kiln stored itself stays readable: a name that today's rules refuse (a later
release reserved it) and a datasource whose plugin is not installed any more must not
take an undo, a published app, the query editor or the run API down."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from builder.models import Page, Query, Widget
from builder.publishing import publish
from datasources.models import Datasource
from queries.models import ApiToken, QueryRun
from tests.support.apps import make_app, welcome_inputs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def contact(team, smtp_server):
    app, query = make_app(team.workspace, smtp_server.port)
    return app, query


def post_run(client, key, app_slug, query="send_welcome"):
    return client.post(
        f"/api/v1/apps/{app_slug}/queries/{query}/runs",
        json.dumps({"inputs": welcome_inputs()}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def test_an_undo_brings_back_a_widget_whose_name_is_now_reserved(client, team, contact):
    app, _ = contact
    page = app.pages.get()
    # Saved before "loop" was reserved: the row skips today's validators.
    Widget.objects.create(page=page, name="loop", type="text")
    client.force_login(team.teammate)
    canvas = [page.app.slug, page.slug]
    delete = client.post(reverse("editor:canvas_delete", args=[*canvas, "loop"]))
    assert delete.status_code == 200
    assert not page.widgets.filter(name="loop").exists()
    undo = client.post(reverse("editor:canvas_undo", args=canvas))
    assert undo.status_code == 200
    assert page.widgets.filter(name="loop").exists()


def test_a_published_app_with_a_now_reserved_name_still_runs(client, team, contact):
    app, _ = contact
    page: Page = app.pages.get()
    Widget.objects.create(page=page, name="loop", type="text", properties={"text": "Hi"})
    publish(app, team.owner)
    client.force_login(team.viewer)
    assert client.get(f"/apps/{app.slug}/").status_code == 200
    key = ApiToken.issue(team.teammate, "tests")[1]
    response = post_run(client, key, app.slug)
    assert response.status_code == 202, response.content


@pytest.fixture
def orphan(team, contact):
    """A query whose datasource's plugin ("gone") is not installed on this server."""
    app, _ = contact
    datasource = Datasource.objects.create(workspace=team.workspace, name="Old", kind="gone")
    query = Query.objects.create(app=app, name="old_query", datasource=datasource, action="ping")
    return app, query, datasource


def test_a_datasource_whose_plugin_is_gone_does_not_take_the_app_down(client, team, orphan):
    app, query, datasource = orphan
    publish(app, team.owner)
    client.force_login(team.viewer)
    assert client.get(f"/apps/{app.slug}/").status_code == 200
    client.force_login(team.teammate)
    assert client.get(f"/apps/{app.slug}/preview/").status_code == 200
    listed = client.get(reverse("datasources:list", args=[team.workspace.slug]))
    assert listed.status_code == 200 and "Old" in listed.text
    editor = client.get(reverse("editor:query", args=[app.slug, query.name]))
    assert editor.status_code == 200
    queries = client.get(reverse("editor:queries", args=[app.slug]))
    assert queries.status_code == 200 and "old_query" in queries.text


def test_running_a_query_whose_plugin_is_gone_names_the_datasource(client, team, orphan):
    app, query, _ = orphan
    key = ApiToken.issue(team.teammate, "tests")[1]
    response = post_run(client, key, app.slug, query=query.name)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "datasource"
    assert "“gone” datasource plugin is not installed" in body["error"]
    assert not QueryRun.objects.filter(query=query).exists()
