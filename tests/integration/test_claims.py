"""Claiming a run reads it and its datasource as the ORM would (on PostgreSQL in the
claiming statement itself), and only once."""

from __future__ import annotations

import pytest

from queries import execution
from queries.claims import NOT_READ, claim_and_read
from queries.execution import create_run
from queries.models import QueryRun
from tests.support.apps import make_app, welcome_inputs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run(team, smtp_server, monkeypatch):
    monkeypatch.setattr(execution, "enqueue_new", lambda run_id, due=None: True)
    _, query = make_app(team.workspace, smtp_server.port)
    query.datasource.secret = "s3cret-pass"
    query.datasource.save()
    return create_run(query, team.teammate, welcome_inputs())


def test_the_claimed_run_is_the_stored_run(run):
    claimed = claim_and_read(run.pk)
    stored = QueryRun.objects.select_related("datasource").get(pk=run.pk)
    assert stored.status == "sending"
    for field in QueryRun._meta.concrete_fields:
        if field.name not in NOT_READ:
            assert field.value_from_object(claimed) == field.value_from_object(stored), field.name
    assert claimed.datasource.secret == "s3cret-pass"
    assert claimed.datasource.config == stored.datasource.config
    assert claimed.datasource.settings() == stored.datasource.settings()


def test_a_run_is_claimed_once(run):
    assert claim_and_read(run.pk) is not None
    assert claim_and_read(run.pk) is None


def test_a_run_whose_datasource_was_deleted_is_claimed_without_one(run):
    QueryRun.objects.filter(pk=run.pk).update(datasource=None)  # as on_delete=SET_NULL does
    claimed = claim_and_read(run.pk)
    assert claimed is not None
    assert claimed.datasource is None
