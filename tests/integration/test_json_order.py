"""What a builder typed as JSON comes back with its keys in the same order, on SQLite and
on PostgreSQL (whose jsonb sorts them: builder/jsonfield.py)."""

from __future__ import annotations

import json

import pytest

from builder.models import App, AppVersion, Page, PageEdit, Query, Widget
from queries.models import ApiToken, QueryRun
from tests.support.apps import mailer, make_app, welcome_inputs
from widgets.types.table import normalize_columns, normalize_rows

# Not sorted in any way a database might sort them: longest first, then shorter.
TYPED = {"email_address": "ada@example.com", "name": "Ada", "id": 7}
ORDER = list(TYPED)


def keys(value: dict) -> list[str]:
    return list(value)


@pytest.fixture
def page(team):
    app = App.objects.create(workspace=team.workspace, name="Contacts")
    return Page.objects.create(app=app, name="Home")


def test_widget_properties_and_events_keep_the_typed_order(page):
    widget = Widget.objects.create(
        page=page,
        name="table1",
        type="table",
        properties={"data": [TYPED], "columns": [], **TYPED},
        events={"row_selected": [], "click": [], "a": []},
    )

    stored = Widget.objects.get(pk=widget.pk)

    assert keys(stored.properties) == ["data", "columns", *ORDER]
    assert keys(stored.properties["data"][0]) == ORDER
    assert keys(stored.events) == ["row_selected", "click", "a"]


def test_a_table_shows_its_columns_in_the_order_typed(page):
    widget = Widget.objects.create(
        page=page, name="table1", type="table", properties={"data": [TYPED]}
    )

    rows = normalize_rows(Widget.objects.get(pk=widget.pk).properties["data"])

    assert [column.key for column in normalize_columns([], rows)] == ORDER


def test_query_fields_versions_and_history_keep_the_typed_order(page, team):
    datasource = mailer(team.workspace, 2525)
    query = Query.objects.create(app=page.app, name="q", datasource=datasource, fields=TYPED)
    version = AppVersion.objects.create(app=page.app, number=1, document={"app": TYPED})
    edit = PageEdit.objects.create(page=page, before=[TYPED], after=[TYPED])

    assert keys(Query.objects.get(pk=query.pk).fields) == ORDER
    assert keys(AppVersion.objects.get(pk=version.pk).document["app"]) == ORDER
    stored = PageEdit.objects.get(pk=edit.pk)
    assert keys(stored.before[0]) == keys(stored.after[0]) == ORDER


@pytest.mark.django_db(transaction=True)  # the run is sent once its transaction commits
def test_a_run_reads_success_then_message_as_documented(client, team, smtp_server):
    app, _ = make_app(team.workspace, smtp_server.port)
    token = ApiToken.issue(team.teammate, "tests")[1]
    headers = {"Authorization": f"Bearer {token}"}
    posted = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": welcome_inputs()}),
        content_type="application/json",
        headers=headers,
    )
    assert posted.status_code == 202, posted.content

    run = client.get(f"/api/v1/runs/{posted.json()['id']}", headers=headers)

    assert keys(json.loads(run.content)["data"]) == ["success", "message"]
    stored = QueryRun.objects.get(pk=posted.json()["id"])
    assert keys(stored.fields)[:3] == ["from", "to", "cc"]
