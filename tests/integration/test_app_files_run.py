"""An exported app imports into an empty database and runs."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from builder.models import App, Query
from datasources.models import Datasource
from queries.execution import create_run
from queries.models import QueryRun
from tests.support.apps import make_app, welcome_inputs
from workspaces.models import Role, Workspace

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_exported_app_imports_into_an_empty_database_and_runs(team, smtp_server, tmp_path):
    app, _ = make_app(team.workspace, smtp_server.port)
    out = io.StringIO()
    call_command("export_app", app.slug, stdout=out)
    document = json.loads(out.getvalue())

    # Empty the database of everything Kiln holds.
    for model in (QueryRun, Query, App, Datasource, Workspace):
        model.objects.all().delete()
    get_user_model().objects.all().delete()

    user = get_user_model().objects.create_user("newcomer", "n@kiln.test", "pw-newcomer-1")
    workspace = Workspace.objects.create(name="Fresh")
    workspace.add_member(user, Role.EDITOR)
    path = tmp_path / "app.json"
    path.write_text(json.dumps(document))
    call_command("import_app", str(path), "--workspace", workspace.slug, stdout=io.StringIO())

    query = Query.objects.get(app__workspace=workspace, name="send_welcome")
    run = create_run(query, user, welcome_inputs())
    run.refresh_from_db()
    assert run.status == "sent", run.error
    assert smtp_server.received[0].message["Subject"] == "Welcome, Ann!"
