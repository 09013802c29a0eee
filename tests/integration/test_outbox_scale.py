"""The outbox list with 100,000 runs on PostgreSQL: served by the (workspace | app,
created_at) indexes, not by sorting the table, and quickly."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from tests.support.apps import make_app

pytestmark = pytest.mark.django_db

RUNS = 100_000


@pytest.fixture
def crowded(team):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: DATABASE_URL=$KILN_TEST_POSTGRES_URL (scripts/postgres.sh)")
    app, query = make_app(team.workspace, 2525)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO queries_queryrun (
                workspace_id, app_id, query_id, query_name, visitor, action, timeout_seconds,
                fields, payload, payload_meta, status, details, error, error_field, failures,
                attempts, max_attempts, next_attempt_at, task_id, created_at, subject,
                mail_from, mail_to, mail_cc, mail_bcc, created_by_id
            )
            SELECT %s, %s, %s, 'send_welcome', '', 'send_email', 60, '{}', %s, '{}',
                   CASE WHEN n %% 10 = 0 THEN 'failed' ELSE 'sent' END, '{}', '', '', '[]',
                   1, 5, now(), '', now() - n * interval '1 second', 'Run ' || n,
                   'app@kiln.test', 'user' || n || '@example.com', '', '', %s
            FROM generate_series(1, %s) AS n
            """,
            [team.workspace.pk, app.pk, query.pk, b"x" * 2_000, team.teammate.pk, RUNS],
        )
        cursor.execute("ANALYZE queries_queryrun")
    return app


def plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_first_and_a_late_page_are_fast_and_use_the_index(client, team, crowded):
    client.force_login(team.teammate)
    for url in (f"/w/{team.workspace.slug}/outbox/", f"/edit/{crowded.slug}/outbox/"):
        client.get(url)
        started = time.monotonic()
        response = client.get(url)
        assert response.status_code == 200
        assert time.monotonic() - started < 1.0
        runs = response.context["page_obj"].object_list
        sql, params = runs.query.sql_with_params()
        explained = plan(sql, params)
        assert "outbox_by_time" in explained, explained
        assert "Sort" not in explained.split("\n")[0], explained
    started = time.monotonic()
    late = client.get(f"/w/{team.workspace.slug}/outbox/", {"page": 1500, "status": "failed"})
    assert late.status_code == 200
    assert time.monotonic() - started < 2.0
