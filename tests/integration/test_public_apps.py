"""Public apps: an admin opens a published app to visitors who have not signed in; they
view, click and poll their own runs only; the preview and the editor stay for members;
turning public off closes it at once."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from builder.models import App, Page, Query, Widget
from builder.publishing import publish
from queries.models import QueryRun
from tests.support.apps import mailer

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = "/apps/open/home/"


@pytest.fixture
def app(team, smtp_server):
    datasource = mailer(team.workspace, smtp_server.port)
    app = App.objects.create(workspace=team.workspace, name="Open", slug="open")
    home = Page.objects.create(app=app, name="Home", slug="home")
    Widget.objects.create(
        page=home,
        name="who",
        type="text",
        properties={"text": "anon=<< user.anonymous >> name=<< user.username >>"},
    )
    Widget.objects.create(
        page=home, name="status", type="text", properties={"text": "ping is << ping.status >>"}
    )
    chain = [{"action": "run_query", "query": "ping"}]
    Widget.objects.create(page=home, name="ping_btn", type="button", events={"click": chain})
    dl = [{"action": "download", "query": "ping", "filename": "ping.json"}]
    Widget.objects.create(page=home, name="dl_btn", type="button", events={"click": dl})
    Query.objects.create(
        app=app,
        name="ping",
        datasource=datasource,
        fields={"from": "a@kiln.test", "to": "b@example.com", "subject": "Ping"},
    )
    publish(app, team.owner)
    return app


def make_public(client, team, app, value: str = "true"):
    client.force_login(team.owner)
    response = client.post(f"/edit/{app.slug}/public", {"public": value})
    client.logout()
    return response


def click(client, button="ping_btn"):
    return client.post(f"{PAGE.rstrip('/')}/events", {"widget": button, "event": "click"})


def poll(client, run):
    return client.post(
        f"{PAGE.rstrip('/')}/runs/{run.pk}/poll", {"path": "click-0", "trigger": "ping_btn"}
    )


def test_a_private_app_sends_an_anonymous_visitor_to_sign_in(client, app):
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert click(client).status_code == 302
    assert not QueryRun.objects.exists()


def test_only_an_admin_makes_an_app_public(client, team, app):
    for actor, status in ((team.teammate, 403), (team.viewer, 403), (team.outsider, 404)):
        client.force_login(actor)
        assert client.post(f"/edit/{app.slug}/public", {"public": "true"}).status_code == status
    app.refresh_from_db()
    assert app.public is False
    client.force_login(team.teammate)
    page = client.get(f"/edit/{app.slug}/public").text
    assert "Public means anyone" in page and "Only an admin" in page
    assert make_public(client, team, app).status_code == 302
    app.refresh_from_db()
    assert app.public is True


def test_a_bad_public_value_is_refused_by_name_and_changes_nothing(client, team, app):
    client.force_login(team.owner)
    response = client.post(f"/edit/{app.slug}/public", {"public": "maybe"}, follow=True)
    assert "Public: choose on or off." in response.text
    app.refresh_from_db()
    assert app.public is False


def test_an_anonymous_visitor_views_clicks_and_polls_their_own_run(client, team, app, smtp_server):
    make_public(client, team, app)
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "anon=True name=" in page.text
    response = click(client)
    # Ended inside the click's request: the answer is the result, not a poller.
    assert response.status_code == 200 and "kiln-poller" not in response.text
    run = QueryRun.objects.get()
    assert run.created_by is None and len(run.visitor) >= 24
    assert poll(client, run).status_code == 200
    assert "ping is sent" in client.get(PAGE).text
    assert smtp_server.received[0].message["Subject"] == "Ping"
    # Another visitor: a session of their own, which sees none of the first one's runs.
    other = Client()
    assert "ping is sent" not in other.get(PAGE).text
    assert poll(other, run).status_code == 404
    assert other.get(f"/apps/open/runs/{run.pk}/download").status_code == 404
    assert client.get(f"/apps/open/runs/{run.pk}/download").status_code == 200
    # Nor do members see it as theirs.
    client.force_login(team.viewer)
    assert poll(client, run).status_code == 404


def test_a_visitor_without_a_session_owns_no_runs(client, team, app):
    # Runs with no user and another visitor id are never "no one's, so anyone's".
    make_public(client, team, app)
    query = Query.objects.get(name="ping")
    stray = QueryRun.objects.create(workspace=team.workspace, query=query, visitor="")
    assert poll(client, stray).status_code == 404


def test_a_signed_in_user_is_not_anonymous_in_bindings(client, team, app):
    client.force_login(team.viewer)
    assert "anon=False name=viewer" in client.get(PAGE).text


def test_anyone_signed_in_may_use_a_public_app(client, team, app):
    make_public(client, team, app)
    client.force_login(team.outsider)
    assert client.get(PAGE).status_code == 200
    assert click(client).status_code == 200
    assert QueryRun.objects.get().created_by == team.outsider


def test_an_unpublished_public_app_is_not_found(client, team):
    app = App.objects.create(workspace=team.workspace, name="Draft", slug="draft", public=True)
    Page.objects.create(app=app, name="Home", slug="home")
    assert client.get("/apps/draft/").status_code == 404


def test_the_preview_and_the_editor_stay_for_members(client, team, app):
    make_public(client, team, app)
    for url in ("/apps/open/preview/", "/apps/open/preview/home/", f"/edit/{app.slug}/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    preview_event = client.post(
        "/apps/open/preview/home/events", {"widget": "ping_btn", "event": "click"}
    )
    assert preview_event.status_code == 302 and not QueryRun.objects.exists()
    client.force_login(team.outsider)
    assert client.get("/apps/open/preview/").status_code == 404
    assert client.get(f"/edit/{app.slug}/public").status_code == 404


def test_turning_public_off_closes_the_app_at_once(client, team, app):
    make_public(client, team, app)
    assert client.get(PAGE).status_code == 200
    click(client)
    run = QueryRun.objects.get()
    admin = Client()
    make_public(admin, team, app, "false")
    assert client.get(PAGE).status_code == 302
    assert click(client).status_code == 302
    assert poll(client, run).status_code == 302
    assert QueryRun.objects.count() == 1


def test_the_editor_shows_that_an_app_is_public(client, team, app):
    make_public(client, team, app)
    client.force_login(team.teammate)
    page = client.get(f"/edit/{app.slug}/public").text
    assert "badge-public" in page and "/apps/open/" in page
    assert json.dumps(App.objects.get(pk=app.pk).public) == "true"
