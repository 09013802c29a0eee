"""A second plugin, defined in the tests (tests/support/recorder_plugin.py), goes through
the same pages and paths as SMTP: the datasource pages, the query editor (its form built
from the plugin's declared fields), a published app's button in the viewer, the run API,
and a real Celery worker. Nothing generic was edited to add it.

The editor, viewer and run API tests every plugin passes run for it and for SMTP in
test_plugin_parity.py; these are the ones that read its own fields and data."""

from __future__ import annotations

import json
import time

import pytest
from django.urls import reverse

from builder.models import App, Page, Query, Widget
from datasources.models import Datasource
from datasources.plugins import get_plugin, plugin_choices
from queries.execution import create_run
from queries.models import ApiToken, QueryRun
from tests.support.recorder_plugin import EXPLODE, KIND, PATH, records

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true"}


@pytest.fixture
def recorder(settings):
    """The recorder plugin registered, as a deployment would through
    KILN_EXTRA_PLUGINS."""
    settings.KILN_EXTRA_PLUGINS = {KIND: PATH}
    return get_plugin(KIND)


@pytest.fixture
def log_path(tmp_path):
    return tmp_path / "records.jsonl"


@pytest.fixture
def source(team, recorder, log_path):
    return Datasource.objects.create(
        workspace=team.workspace,
        name="Notes",
        kind=KIND,
        config={"label": "notes", "log_path": str(log_path)},
    )


@pytest.fixture
def board(team, source):
    """An app with a note input, a button that runs record_note, and what it shows."""
    app = App.objects.create(workspace=team.workspace, name="Board", slug="board")
    page = Page.objects.create(app=app, name="Home", slug="home")
    Widget.objects.create(page=page, name="note", type="input", properties={"label": "Note"})
    button = Widget.objects.create(
        page=page, name="post", type="button", properties={"label": "Post"}
    )
    button.events = {"click": [{"action": "run_query", "query": "record_note"}]}
    button.save()
    Widget.objects.create(
        page=page,
        name="last",
        type="text",
        properties={"text": "Last: << record_note.data.recorded.message or 'none' >>"},
        y=2,
    )
    Widget.objects.create(
        page=page,
        name="log",
        type="table",
        properties={"data": "<< record_note.runs >>"},
        y=3,
    )
    query = Query.objects.create(
        app=app,
        name="record_note",
        datasource=source,
        action="record",
        fields={"channel": "#general", "message": "<< user.username >> says << note.value >>"},
    )
    return app, query


def editor_url(name, app, *args):
    return reverse(f"editor:{name}", args=[app.slug, *args])


# ---------------------------------------------------------------------- registry and pages


def test_the_registry_and_the_model_accept_a_registered_plugin(recorder, source):
    assert (KIND, "Recorder") in plugin_choices()
    source.full_clean()
    assert source.plugin is recorder
    assert source.summary == "records as notes"
    assert recorder.secret_fields == ()


def test_without_registration_the_kind_is_unknown(settings):
    settings.KILN_EXTRA_PLUGINS = {}
    with pytest.raises(LookupError):
        get_plugin(KIND)


def test_a_datasource_of_the_kind_is_created_and_edited_through_its_pages(
    client, team, recorder, log_path
):
    client.force_login(team.teammate)
    listing = client.get(reverse("datasources:list", args=[team.workspace.slug]))
    assert "Recorder" in listing.text
    create = reverse("datasources:create", args=[team.workspace.slug, KIND])
    page = client.get(create)
    assert page.status_code == 200
    assert 'name="label"' in page.text and 'name="log_path"' in page.text
    assert 'name="host"' not in page.text

    missing = client.post(create, {"name": "Notes", "kind": KIND, "label": ""})
    assert missing.status_code == 422
    assert "This field is required." in missing.text

    created = client.post(
        create, {"name": "Notes", "kind": KIND, "label": "notes", "log_path": str(log_path)}
    )
    assert created.status_code == 302
    source = Datasource.objects.get(workspace=team.workspace)
    assert source.kind == KIND and source.config["label"] == "notes"

    edit = reverse("datasources:edit", args=[team.workspace.slug, source.pk])
    assert 'value="notes"' in client.get(edit).text
    client.post(edit, {"name": "Notes", "label": "memos", "log_path": str(log_path)})
    source.refresh_from_db()
    assert source.config["label"] == "memos"
    listed = client.get(reverse("datasources:list", args=[team.workspace.slug]))
    assert "records as memos" in listed.text

    check = client.post(
        reverse("datasources:test_saved", args=[team.workspace.slug, source.pk]),
        {"name": "Notes", "label": "memos"},
    )
    assert "Recorder “memos” is ready." in check.text


# ---------------------------------------------------------------------- query editor


def test_the_editor_draws_the_declared_fields(client, team, board):
    app, query = board
    client.force_login(team.teammate)
    response = client.get(editor_url("query", app, query.name))
    assert response.status_code == 200
    text = response.text
    assert "Recorder · Record" in text
    assert text.index(">Channel") < text.index(">Message")
    assert 'placeholder="#general"' in text and "Where the message is recorded." in text
    assert '<span class="qe-required" title="Required">*</span>' in text
    assert "<textarea" in text and 'name="message"' in text
    assert 'name="to"' not in text and "Send email" not in text and "Preview email" not in text


def form_data(query, **overrides):
    data = {
        "name": query.name,
        "datasource": str(query.datasource_id),
        "timeout_seconds": str(query.timeout_seconds),
        "channel": query.fields["channel"],
        "message": query.fields["message"],
        "test_values": json.dumps({"note": {"value": "hello"}}),
    }
    data.update(overrides)
    return data


def test_run_records_for_real_and_shows_the_data(client, team, board, log_path):
    app, query = board
    client.force_login(team.teammate)
    response = client.post(editor_url("query_run", app, query.name), form_data(query))
    assert response.status_code == 200
    run = QueryRun.objects.get()
    assert run.status == "sent"
    assert run.data == {
        "recorded": {"channel": "#general", "message": "teammate says hello"},
        "by": "notes",
    }
    assert "teammate says hello" in response.text
    assert records(log_path) == [
        {"label": "notes", "channel": "#general", "message": "teammate says hello"}
    ]


def test_an_unexpected_exception_becomes_a_clear_error(client, team, board, log_path):
    app, query = board
    client.force_login(team.teammate)
    response = client.post(
        editor_url("query_run", app, query.name), form_data(query, channel=EXPLODE)
    )
    assert response.status_code == 200
    run = QueryRun.objects.get()
    assert run.status == "failed"
    assert run.error == "Kiln failed to run this query (RuntimeError)."
    assert run.failures[-1]["type"] == "RuntimeError"
    assert "Kiln failed to run this query (RuntimeError)." in response.text


# ---------------------------------------------------------------------- viewer and API


def test_a_button_in_the_published_app_records_and_shows_the_data(client, team, board):
    app, _ = board
    client.force_login(team.owner)
    assert client.post(reverse("editor:publish", args=[app.slug])).status_code == 302
    client.force_login(team.viewer)
    assert client.get("/apps/board/").status_code == 200
    event = client.post(
        "/apps/board/home/events", {"widget": "post", "event": "click", "note": "from the page"}
    )
    # Ended inside the click's request: the answer shows the data at once.
    assert event.status_code == 200 and "kiln-poller" not in event.text
    assert "Last: viewer says from the page" in event.text
    run = QueryRun.objects.get()
    poll = client.post(
        f"/apps/board/home/runs/{run.pk}/poll",
        {"note": "from the page", "path": "click-0", "trigger": "post"},
    )
    assert poll.status_code == 200
    assert "Last: viewer says from the page" in poll.text
    assert "#general" in poll.text


def post_run(client, token, inputs):
    return client.post(
        "/api/v1/apps/board/queries/record_note/runs",
        json.dumps({"inputs": inputs}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_the_run_api_runs_it_with_token_auth(client, team, board, log_path):
    token = ApiToken.issue(team.teammate, "tests")[1]
    response = post_run(client, token, {"note": {"value": "via the API"}})
    assert response.status_code == 202, response.json()
    body = response.json()
    fetched = client.get(body["url"], headers={"Authorization": f"Bearer {token}"})
    assert fetched.json()["status"] == "sent"
    assert fetched.json()["data"]["recorded"]["message"] == "teammate says via the API"
    assert records(log_path)[-1]["message"] == "teammate says via the API"


def test_a_real_celery_worker_runs_it(recorder, celery_worker, team, board, log_path):
    _, query = board
    run = create_run(query, team.teammate, {"note": {"value": "in the worker"}})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.finished:
            break
        time.sleep(0.1)
    assert run.status == "sent", run.error
    assert run.data["recorded"]["message"] == "teammate says in the worker"
    assert records(log_path) == [
        {"label": "notes", "channel": "#general", "message": "teammate says in the worker"}
    ]
