"""A worker keeps its database connection from one task to the next (CONN_MAX_AGE),
instead of Celery's default of closing it around every task."""

from __future__ import annotations

import pytest
from django.db import connection

from queries.execution import create_run
from queries.models import QueryRun
from tests.support.apps import make_app, welcome_inputs

pytestmark = pytest.mark.redis


def other_backends() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


def test_the_worker_keeps_its_connection_between_tasks(celery_worker, team, smtp_server):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: DATABASE_URL=$KILN_TEST_POSTGRES_URL (scripts/postgres.sh)")
    _, query = make_app(team.workspace, smtp_server.port)
    first = create_run(query, team.owner, welcome_inputs())
    assert QueryRun.objects.get(pk=first.pk).wait(20).status == "sent"
    # The worker may have connected before its first task (it enqueues scheduled runs
    # again when it starts); what counts is that a connection outlives the task. With
    # Celery's default it would be closed when the task ends, and none would be left.
    kept = other_backends()
    assert kept, "the worker's connection was closed after its task"
    second = create_run(query, team.owner, welcome_inputs())
    assert QueryRun.objects.get(pk=second.pk).wait(20).status == "sent"
    assert kept <= other_backends()
