"""Scheduled sends and the broker (a real Redis, no worker, so the queue stays as it is):
a run due beyond the ETA horizon gets no task until the sweep finds it within reach; one
within reach is enqueued with an ETA at creation; a due one whose task was handed over
before it came due is enqueued once more by the sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from queries.models import QueryRun
from queries.tasks import broker_backlog, enqueue_new, enqueue_scheduled, eta_horizon, sweep
from tests.integration.test_sweep_backlog import broker  # noqa: F401  (a fixture)
from tests.support.apps import make_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def short_visibility(settings):
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "visibility_timeout": 100,
    }
    assert eta_horizon() == timedelta(seconds=90)


def scheduled_run(team, seconds: float) -> QueryRun:
    _, query = make_app(team.workspace, 2525, name=f"App {seconds}")
    when = timezone.now() + timedelta(seconds=seconds)
    return QueryRun.objects.create(
        workspace=team.workspace,
        query=query,
        datasource=query.datasource,
        action=query.action,
        status="scheduled",
        send_at=when,
        next_attempt_at=when,
    )


def test_a_run_beyond_the_horizon_waits_for_the_sweep(broker, short_visibility, team):  # noqa: F811
    run = scheduled_run(team, 500)
    with transaction.atomic():
        assert enqueue_new(run.pk, run.send_at) is False
    run.refresh_from_db()
    assert run.enqueued_at is None and broker_backlog() == 0
    assert enqueue_scheduled() == 0  # still beyond reach
    # Time passes: within reach now, the sweep enqueues it with an ETA.
    soon = timezone.now() + timedelta(seconds=30)
    QueryRun.objects.filter(pk=run.pk).update(send_at=soon, next_attempt_at=soon)
    assert sweep()["enqueued"] == 1
    assert broker_backlog() == 1
    run.refresh_from_db()
    assert run.enqueued_at is not None and run.task_id
    # Found once: the next sweep leaves it to its task.
    assert sweep()["enqueued"] == 0
    assert broker_backlog() == 1


def test_a_run_within_reach_is_enqueued_at_creation(broker, short_visibility, team):  # noqa: F811
    run = scheduled_run(team, 30)
    assert enqueue_new(run.pk, run.send_at) is True
    assert broker_backlog() == 1
    assert sweep()["enqueued"] == 0  # not due: its ETA task is enough


def test_a_due_run_enqueued_before_its_time_is_enqueued_once_more(broker, team):  # noqa: F811
    run = scheduled_run(team, 30)
    enqueue_new(run.pk, run.send_at)
    # 30 s later: due, its task handed over 30 s before.
    past = timezone.now() - timedelta(seconds=1)
    QueryRun.objects.filter(pk=run.pk).update(
        send_at=past, next_attempt_at=past, enqueued_at=past - timedelta(seconds=30)
    )
    assert sweep()["enqueued"] == 1
    assert sweep()["enqueued"] == 0
    assert broker_backlog() == 2
