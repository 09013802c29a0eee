"""The SQL queries of a viewer request do not grow with the number of queries of the app:
the queries' runs are read once per request, in one SQL query, and only those of the
queries that the request's bindings read."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from builder.models import App, Page, Query, Widget
from builder.publishing import publish
from queries.context import RECENT_RUNS, binding_context
from queries.execution import create_run
from queries.models import QueryRun
from tests.support.apps import mailer

pytestmark = pytest.mark.django_db(transaction=True)

CHAIN = [
    {
        "action": "run_query",
        "query": "q0",
        "on_success": [
            {"action": "show_toast", "kind": "success", "message": "Sent << q0.status >>"}
        ],
        "on_error": [],
    },
    {"action": "show_toast", "kind": "info", "message": "Sending to << name_in.value >>"},
]


def make_app(team, smtp_server, slug: str, queries: int) -> App:
    datasource = mailer(team.workspace, smtp_server.port, name=f"Mailer {slug}")
    app = App.objects.create(workspace=team.workspace, name=slug.title(), slug=slug)
    home = Page.objects.create(app=app, name="Home", slug="home")
    Widget.objects.create(page=home, name="name_in", type="input", properties={"label": "Name"})
    Widget.objects.create(page=home, name="btn", type="button", events={"click": CHAIN})
    for i in range(queries):
        query = Query.objects.create(
            app=app,
            name=f"q{i}",
            datasource=datasource,
            fields={"from": "a@kiln.test", "to": "b@example.com", "subject": f"Q{i}"},
        )
        # Every query is read by a widget of the page, and has runs of the user.
        text = f"<< q{i}.status >> << q{i}.runs|length >>"
        Widget.objects.create(page=home, name=f"t{i}", type="text", properties={"text": text})
        for _ in range(3):
            QueryRun.objects.create(
                workspace=team.workspace,
                query=query,
                created_by=team.viewer,
                status="sent",
                fields={"subject": f"Q{i}"},
                finished_at=timezone.now(),
            )
    publish(app, team.owner)
    return app


def count(client, url: str, data: dict) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.post(url, data)
    assert response.status_code == 200, response.text
    return len(captured), response.text


def test_an_event_and_a_finishing_poll_cost_the_same_with_1_or_10_queries(
    client, team, smtp_server, settings
):
    # make_app stores 33 recent runs of the viewer: over the default per-user run limit,
    # which is not what this test measures.
    settings.KILN_RUNS_PER_USER_PER_MINUTE = 1000
    apps = {
        "one": make_app(team, smtp_server, "one", 1),
        "ten": make_app(team, smtp_server, "ten", 10),
    }
    client.force_login(team.viewer)
    events, polls = {}, {}
    for slug, app in apps.items():
        url = f"/apps/{slug}/home/events"
        events[slug], text = count(
            client, url, {"widget": "btn", "event": "click", "name_in": "Zoe"}
        )
        # The run ended within the click: its readers come with the answer.
        assert "kiln-poller" not in text and "Sending to Zoe" in text
        assert "Sent sent" in text
        run = QueryRun.objects.filter(query__app=app).latest("id")
        assert run.status == "sent"
        poll = f"/apps/{slug}/home/runs/{run.pk}/poll"
        polls[slug], text = count(
            client, poll, {"path": "click-0", "trigger": "btn", "name_in": "Zoe"}
        )
        assert "Sent sent" in text and 'id="w-t0"' in text  # the readers of q0 again
    assert events["one"] == events["ten"]
    assert polls["one"] == polls["ten"]


def test_binding_context_reads_every_querys_recent_runs_in_one_query(team, smtp_server):
    app = make_app(team, smtp_server, "ten", 10)
    query = Query.objects.get(app=app, name="q3")
    for _ in range(RECENT_RUNS + 2):
        QueryRun.objects.create(workspace=team.workspace, query=query, created_by=team.viewer)
    with CaptureQueriesContext(connection) as captured:
        context = binding_context(app, team.viewer, {})
    assert len(captured) == 2  # the app's queries, then all their runs
    assert len(context["q3"]["runs"]) == RECENT_RUNS
    assert context["q3"]["status"] == "queued"  # the newest first
    assert [len(context[f"q{i}"]["runs"]) for i in (0, 9)] == [3, 3]
    assert binding_context(app, team.teammate, {})["q0"]["runs"] == []


def test_a_context_loads_only_the_queries_its_bindings_read(team, smtp_server):
    app = make_app(team, smtp_server, "ten", 10)
    everything = binding_context(app, team.viewer, {})
    with CaptureQueriesContext(connection) as captured:
        context = binding_context(app, team.viewer, {}, reads={"q3", "user", "name_in"})
    assert len(captured) == 2  # the queries read, then their runs
    assert context["q3"] == everything["q3"] and len(context["q3"]["runs"]) == 3
    assert "q4" not in context
    inputs = {"name_in": {"value": "Zoe"}}
    with CaptureQueriesContext(connection) as captured:
        context = binding_context(app, team.viewer, inputs, reads={"name_in", "url", "user"})
    # A name that may be a query is looked up (a widget may share it): no runs to read.
    assert [sql for sql in captured.captured_queries if "ROW_NUMBER" in sql["sql"]] == []
    assert context["name_in"] == {"value": "Zoe"}
    with CaptureQueriesContext(connection) as captured:
        binding_context(app, team.viewer, {}, reads={"url", "user", "app", "page"})
    assert len(captured) == 0


def test_a_run_reads_the_queries_its_fields_name(team, smtp_server, settings):
    settings.KILN_RUNS_PER_USER_PER_MINUTE = 1000  # make_app stores 30 runs of the viewer
    app = make_app(team, smtp_server, "ten", 10)
    query = Query.objects.get(app=app, name="q0")
    query.fields = {**query.fields, "subject": "After << q7.status >> (<< q7.runs|length >>)"}
    query.save()
    run = create_run(query, team.viewer, {})
    assert run.fields["subject"] == "After sent (3)"


def test_a_page_reading_no_query_loads_no_query(client, team, smtp_server):
    datasource = mailer(team.workspace, smtp_server.port, name="Mailer plain")
    app = App.objects.create(workspace=team.workspace, name="Plain", slug="plain")
    home = Page.objects.create(app=app, name="Home", slug="home")
    Widget.objects.create(page=home, name="title", type="text", properties={"text": "<< url.x >>"})
    for i in range(5):
        Query.objects.create(app=app, name=f"q{i}", datasource=datasource, fields={})
    publish(app, team.owner)
    client.force_login(team.viewer)
    client.get("/apps/plain/?x=1")  # the published version is read once per process
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/apps/plain/?x=7")
    assert response.status_code == 200 and ">7<" in response.text
    tables = " ".join(sql["sql"] for sql in captured.captured_queries)
    assert "builder_query" not in tables and "queries_queryrun" not in tables
    assert "builder_appversion" in tables  # found with the app: a new publish shows at once
    # Session, user, app with its version, the workspaces menu, and the sandboxed
    # datasources an editor is warned of (none for a viewer, in the same statement).
    assert len(captured) == 5
