"""The sweep and a backlog: overdue runs whose tasks are only queued behind others are
not enqueued again and again (a real Redis, no worker, so the queue stays as it is)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from queries.models import QueryRun
from queries.tasks import broker_backlog, execute_run_task, sweep
from tests.support.apps import make_app
from tests.support.services import use_broker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker(redis_server, settings):
    previous = use_broker(redis_server.url, eager=False)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    execute_run_task.app.control.purge()
    yield redis_server
    execute_run_task.app.control.purge()
    use_broker(previous[0], eager=previous[1])


def overdue_runs(team, count: int) -> list[int]:
    _, query = make_app(team.workspace, 2525)
    long_ago = timezone.now() - timedelta(hours=1)
    runs = [
        QueryRun.objects.create(
            workspace=team.workspace,
            query=query,
            datasource=query.datasource,
            action=query.action,
            next_attempt_at=long_ago,
            enqueued_at=long_ago,
        )
        for _ in range(count)
    ]
    return [run.pk for run in runs]


def test_a_backlog_is_not_enqueued_again(broker, team, settings):
    settings.KILN_SWEEP_BATCH = 5
    overdue_runs(team, 8)
    assert broker_backlog() == 0
    # The queue is empty: the tasks were lost. At most a batch goes back at a time.
    assert sweep()["enqueued"] == 5
    assert broker_backlog() == 5
    # The queue still holds them (no worker took them): nothing more is added.
    assert sweep()["enqueued"] == 0
    assert broker_backlog() == 5


def test_runs_never_enqueued_always_go(broker, team, settings):
    settings.KILN_SWEEP_BATCH = 1
    ids = overdue_runs(team, 3)
    QueryRun.objects.filter(pk__in=ids).update(enqueued_at=None)
    assert sweep()["enqueued"] == 3
    assert broker_backlog() == 3


def test_the_backlog_is_unknown_without_a_broker(team, settings):
    # The embedded default (eager tasks): no queue to read; the sweep still works.
    assert broker_backlog() is None
