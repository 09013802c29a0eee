"""The migration that moves run attachments from MEDIA_ROOT into their rows."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("queries", "0004_json_keeps_key_order")]
AFTER = [("queries", "0005_run_attachment_content")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_files_move_into_rows_and_a_missing_file_fails_its_run(settings, tmp_path, team):
    settings.MEDIA_ROOT = tmp_path
    from tests.support.apps import make_app

    _, query = make_app(team.workspace, 2525)
    apps = migrate(BEFORE)
    QueryRun = apps.get_model("queries", "QueryRun")
    RunAttachment = apps.get_model("queries", "RunAttachment")
    runs = [
        QueryRun.objects.create(
            workspace_id=team.workspace.pk, query_id=query.pk, datasource_id=query.datasource_id
        )
        for _ in range(2)
    ]
    kept = default_storage.save("workspaces/1/runs/1/0-a.bin", ContentFile(b"\x00alpha\xff"))
    RunAttachment.objects.create(
        run=runs[0], position=0, file=kept, name="a.bin", content_type="x/y", size=7
    )
    RunAttachment.objects.create(
        run=runs[1],
        position=0,
        file="workspaces/1/runs/2/0-gone.bin",
        name="gone.bin",
        content_type="x/y",
        size=3,
    )
    try:
        apps = migrate(AFTER)
        QueryRun = apps.get_model("queries", "QueryRun")
        RunAttachment = apps.get_model("queries", "RunAttachment")
        moved = RunAttachment.objects.get(run_id=runs[0].pk)
        assert bytes(moved.content) == b"\x00alpha\xff"
        assert QueryRun.objects.get(pk=runs[0].pk).status == "queued"
        failed = QueryRun.objects.get(pk=runs[1].pk)
        assert failed.status == "failed"
        assert "gone.bin" in failed.error
    finally:
        migrate(executor_leaf())


def executor_leaf():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()
