"""The migration that gives runs stored before the outbox pages their app, query name,
subject, sender and recipients."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.support.apps import make_app

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("queries", "0006_run_payload")]
AFTER = [("queries", "0007_outbox")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_runs_stored_before_get_their_outbox_columns(team):
    app, query = make_app(team.workspace, 2525)
    apps = migrate(BEFORE)
    QueryRun = apps.get_model("queries", "QueryRun")
    fields = {
        "from": "Kiln <app@kiln.test>",
        "to": ["ann@example.com", "bob@example.com"],
        "cc": "carol@example.com",
        "subject": "Hello",
    }
    old = QueryRun.objects.create(workspace_id=team.workspace.pk, query_id=query.pk, fields=fields)
    bare = QueryRun.objects.create(workspace_id=team.workspace.pk, query_id=query.pk, fields={})
    try:
        apps = migrate(AFTER)
        QueryRun = apps.get_model("queries", "QueryRun")
        run = QueryRun.objects.get(pk=old.pk)
        assert (run.app_id, run.query_name, run.subject) == (app.pk, "send_welcome", "Hello")
        assert run.mail_to == "ann@example.com, bob@example.com"
        assert (run.mail_cc, run.mail_bcc) == ("carol@example.com", "")
        assert run.mail_from == "Kiln <app@kiln.test>"
        empty = QueryRun.objects.get(pk=bare.pk)
        assert (empty.app_id, empty.subject, empty.mail_to) == (app.pk, "", "")
    finally:
        executor = MigrationExecutor(connection)
        migrate(executor.loader.graph.leaf_nodes())
