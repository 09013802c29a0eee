"""The message a run sends is built and checked once, when the run is created, and sent
as stored: attachments streamed from the database a piece at a time."""

from __future__ import annotations

import os

import pytest
from django.utils import timezone

from datasources.plugins.smtp import plugin as smtp_plugin
from datasources.plugins.smtp.stored import PIECE, _base64_lines
from datasources.plugins.smtp.transport import _dot_stuffed
from queries import execution
from queries.execution import create_run
from queries.models import QueryRun
from queries.outbox import execute_run
from tests.support.apps import make_app, welcome_inputs
from workspaces.files import FileContent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def query(team, smtp_server):
    return make_app(team.workspace, smtp_server.port)[1]


@pytest.fixture
def held(monkeypatch):
    """Runs are stored but not sent until the test calls execute_run."""
    monkeypatch.setattr(execution, "enqueue_new", lambda run_id, due=None: True)


def with_files(*files: FileContent) -> dict:
    return welcome_inputs(files1={"files": list(files)})


def test_the_worker_sends_the_stored_message_without_building_it(
    query, team, smtp_server, held, monkeypatch
):
    run = create_run(query, team.teammate, welcome_inputs())
    stored_id = run.payload_meta["message_id"]

    def no_building(*args, **kwargs):
        raise AssertionError("the message was built again")

    monkeypatch.setattr(smtp_plugin, "build_email", no_building)
    assert execute_run(run.pk).status == "sent"
    (received,) = smtp_server.received
    assert received.message["Message-ID"] == stored_id
    assert QueryRun.objects.get(pk=run.pk).details["message_id"] == stored_id


def test_a_retry_sends_the_same_message(query, team, smtp_server, held):
    smtp_server.reply_to_data("451 4.3.0 Try again", "250 OK")
    run = create_run(query, team.teammate, welcome_inputs())
    assert execute_run(run.pk).status == "scheduled"
    QueryRun.objects.filter(pk=run.pk).update(next_attempt_at=timezone.now())
    assert execute_run(run.pk).status == "sent"
    assert smtp_server.handler.transactions == 2
    (received,) = smtp_server.received
    assert received.message["Message-ID"] == run.payload_meta["message_id"]


def test_large_and_odd_sized_attachments_arrive_intact(query, team, smtp_server, held):
    big = os.urandom(PIECE * 2 + 1000)  # three pieces read from the database
    files = (
        FileContent("big.bin", "application/octet-stream", big),
        FileContent("empty.txt", "text/plain", b""),
        FileContent("odd.txt", "text/plain", b".dot\r\n.at line starts\r\n"),
    )
    run = create_run(query, team.teammate, with_files(*files))
    assert b"big" not in bytes(run.payload).split(b"filename")[0]  # no file bytes stored there
    assert execute_run(run.pk).status == "sent"
    (received,) = smtp_server.received
    parts = [
        (p.get_filename(), p.get_payload(decode=True)) for p in received.message.iter_attachments()
    ]
    assert parts == [(f.name, f.data) for f in files]


def test_a_stored_message_keeps_lines_that_start_with_a_dot(query, team, smtp_server, held):
    inputs = welcome_inputs()
    inputs["form1"]["data"]["message"] = ".\n..\n.hidden"
    run = create_run(query, team.teammate, inputs)
    assert execute_run(run.pk).status == "sent"
    message = smtp_server.received[0].message
    assert b"\r\n..\r\n" in bytes(QueryRun.objects.get(pk=run.pk).payload)  # at line starts
    assert ".\r\n..\r\n.hidden</p>" in message.get_body(("html",)).get_content()


def test_dot_stuffing_holds_across_pieces():
    pieces = [b"a\r\n", b".b\r", b"\n.c", b"", b"\r\n..d"]
    assert b"".join(_dot_stuffed(pieces)) == b"a\r\n..b\r\n..c\r\n...d\r\n.\r\n"
    assert b"".join(_dot_stuffed([b"end\r\n"])) == b"end\r\n.\r\n"


@pytest.mark.parametrize("sizes", [[57 * 3], [10, 47, 1, 200], [1], []])
def test_base64_in_pieces_is_the_base64_of_the_whole(sizes):
    import base64

    data = os.urandom(sum(sizes))
    pieces, start = [], 0
    for size in sizes:
        pieces.append(data[start : start + size])
        start += size
    expected = base64.encodebytes(data).replace(b"\n", b"\r\n")[:-2]
    assert b"".join(_base64_lines(pieces)) == expected


def test_a_run_stored_before_messages_were_kept_is_built_from_its_fields(
    query, team, smtp_server, held
):
    files = (FileContent("a.txt", "text/plain", b"alpha"),)
    run = create_run(query, team.teammate, with_files(*files))
    QueryRun.objects.filter(pk=run.pk).update(payload=None, payload_meta={})
    assert execute_run(run.pk).status == "sent"
    (received,) = smtp_server.received
    assert [(p.get_filename(), p.get_content()) for p in received.message.iter_attachments()] == [
        ("a.txt", "alpha")
    ]
