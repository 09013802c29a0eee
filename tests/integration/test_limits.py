"""Limits: runs per person per minute and per app per hour (viewer, page load, editor,
API), Test connection per user per minute, API calls per token per minute. Each refusal
is a 429 whose message names its setting; nothing is stored or sent."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from builder.publishing import publish
from queries.models import ApiToken, QueryRun
from tests.integration.test_editor_queries import form_data as query_form
from tests.integration.test_public_apps import PAGE, click, make_public
from tests.integration.test_public_apps import app as public_app  # noqa: F401
from tests.support.apps import make_app, welcome_inputs

pytestmark = pytest.mark.django_db(transaction=True)

USER_LIMIT = "KILN_RUNS_PER_USER_PER_MINUTE"
APP_LIMIT = "KILN_RUNS_PER_APP_PER_HOUR"


@pytest.fixture
def app(public_app):  # noqa: F811
    return public_app


def test_runs_per_user_per_minute_are_limited_with_a_toast(client, team, app, settings):
    settings.KILN_RUNS_PER_USER_PER_MINUTE = 2
    client.force_login(team.viewer)
    assert click(client).status_code == 200
    assert click(client).status_code == 200
    refused = click(client)
    assert refused.status_code == 429
    assert "kiln-toast-error" in refused.text and USER_LIMIT in refused.text
    assert "at most 2 a minute" in refused.text
    assert QueryRun.objects.count() == 2
    # Per person: a teammate still runs.
    client.force_login(team.teammate)
    assert click(client).status_code == 200
    assert QueryRun.objects.count() == 3


def test_each_anonymous_visitor_has_their_own_run_budget(client, team, app, settings):
    make_public(client, team, app)
    settings.KILN_RUNS_PER_USER_PER_MINUTE = 1
    assert click(client).status_code == 200
    assert click(client).status_code == 429
    other = Client()
    other.get(PAGE)
    assert click(other).status_code == 200
    assert QueryRun.objects.count() == 2


def test_runs_per_app_per_hour_count_everyone_together(client, team, app, settings):
    settings.KILN_RUNS_PER_APP_PER_HOUR = 2
    for actor in (team.viewer, team.teammate):
        client.force_login(actor)
        assert click(client).status_code == 200
    client.force_login(team.owner)
    refused = click(client)
    assert refused.status_code == 429 and APP_LIMIT in refused.text
    assert QueryRun.objects.count() == 2


def test_a_page_load_over_the_limit_says_so(client, team, app, settings):
    query = app.queries.get(name="ping")
    query.run_on_page_load = True
    query.save()
    publish(app, team.owner)
    settings.KILN_RUNS_PER_USER_PER_MINUTE = 1
    client.force_login(team.viewer)
    assert "kiln-poller" in client.post(f"{PAGE}load").text
    refused = client.post(f"{PAGE}load")
    assert refused.status_code == 429 and USER_LIMIT in refused.text
    assert QueryRun.objects.count() == 1


def test_the_editors_run_shows_the_limit_under_the_button(client, team, smtp_server, settings):
    contact, query = make_app(team.workspace, smtp_server.port)
    settings.KILN_RUNS_PER_USER_PER_MINUTE = 1
    client.force_login(team.teammate)
    url = reverse("editor:query_run", args=[contact.slug, query.name])
    data = query_form(query, welcome_inputs())
    assert client.post(url, data, headers={"HX-Request": "true"}).status_code == 200
    refused = client.post(url, data, headers={"HX-Request": "true"})
    assert refused.status_code == 429 and USER_LIMIT in refused.text
    assert "<html" not in refused.text  # the run result part, swapped under Run
    assert QueryRun.objects.count() == 1


def test_test_connection_is_limited_per_user_per_minute(client, team, smtp_server, settings):
    settings.KILN_TEST_CONNECTION_PER_MINUTE = 2
    url = reverse("datasources:test", args=[team.workspace.slug])
    data = {
        "name": "Mailer",
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": str(smtp_server.port),
        "security": "none",
        "auth": "none",
        "timeout": "5",
    }
    client.force_login(team.owner)
    for _ in range(2):
        assert client.post(url, data, HTTP_HX_REQUEST="true").status_code == 200
    refused = client.post(url, data, HTTP_HX_REQUEST="true")
    assert refused.status_code == 429
    assert "KILN_TEST_CONNECTION_PER_MINUTE" in refused.text and 'data-ok="false"' in refused.text
    client.force_login(team.teammate)
    assert client.post(url, data, HTTP_HX_REQUEST="true").status_code == 200


def api_run(client, contact, token):
    return client.post(
        f"/api/v1/apps/{contact.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": welcome_inputs()}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_api_calls_are_limited_per_token_per_minute(client, team, smtp_server, settings):
    contact, _ = make_app(team.workspace, smtp_server.port)
    settings.KILN_API_CALLS_PER_MINUTE = 2
    token = ApiToken.issue(team.teammate, "one")[1]
    assert api_run(client, contact, token).status_code == 202
    run = QueryRun.objects.get()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/runs/{run.pk}", headers=headers).status_code == 200
    refused = client.get(f"/api/v1/runs/{run.pk}", headers=headers)
    assert refused.status_code == 429 and refused["Retry-After"] == "60"
    assert "KILN_API_CALLS_PER_MINUTE" in refused.json()["error"]
    other = ApiToken.issue(team.teammate, "two")[1]
    assert api_run(client, contact, other).status_code == 202


def test_the_api_answers_a_run_limit_with_a_json_429(client, team, smtp_server, settings):
    contact, _ = make_app(team.workspace, smtp_server.port)
    settings.KILN_RUNS_PER_USER_PER_MINUTE = 1
    token = ApiToken.issue(team.teammate, "one")[1]
    assert api_run(client, contact, token).status_code == 202
    refused = api_run(client, contact, token)
    assert refused.status_code == 429 and USER_LIMIT in refused.json()["error"]
    assert QueryRun.objects.count() == 1


def test_a_limit_of_zero_is_no_limit(client, team, app, settings):
    settings.KILN_RUNS_PER_USER_PER_MINUTE = 0
    client.force_login(team.viewer)
    for _ in range(3):
        assert click(client).status_code == 200
