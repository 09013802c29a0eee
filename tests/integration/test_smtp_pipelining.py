"""With a server that offers PIPELINING, the envelope (MAIL FROM, RCPT TO, DATA) goes in
one write; a refused recipient still means nothing is delivered to anyone."""

from __future__ import annotations

import pytest

from datasources.errors import PluginError, TransientError
from datasources.plugins.smtp import transport

MESSAGE = b"From: a@kiln.test\r\nTo: b@example.com\r\nSubject: hi\r\n\r\n.Hello\r\n"


@pytest.fixture
def server(smtp_server):
    smtp_server.handler.pipelining = True
    transport.close_reused()
    yield smtp_server
    transport.close_reused()


def send(server, recipients, reuse: float = 0):
    with transport.connection(server.settings(), reuse_seconds=reuse) as session:
        assert session.client.has_extn("pipelining")
        return session.send("a@kiln.test", recipients, MESSAGE, smtputf8=False)


def test_a_pipelined_send_delivers_once(server):
    send(server, ["b@example.com", "c@example.com"])
    (received,) = server.wait_for(1)
    assert received.rcpt_tos == ["b@example.com", "c@example.com"]
    assert received.data.endswith(b"\r\n.Hello\r\n")


def test_one_refused_recipient_delivers_to_nobody(server):
    server.refuse("c@example.com")
    with pytest.raises(PluginError, match="c@example.com: 550") as error:
        send(server, ["b@example.com", "c@example.com"])
    assert error.value.field == "to" and not isinstance(error.value, TransientError)
    send(server, ["b@example.com"])  # the server is fine afterwards
    (received,) = server.wait_for(1)
    assert received.rcpt_tos == ["b@example.com"]
    assert server.handler.transactions == 1


def test_a_temporarily_refused_recipient_is_retried(server):
    server.refuse("b@example.com", "450 4.2.0 Mailbox busy")
    with pytest.raises(TransientError, match="450"):
        send(server, ["b@example.com"])
    assert server.handler.transactions == 0


def test_reused_pipelined_connections_send_each_message(server):
    for _ in range(3):
        send(server, ["b@example.com"], reuse=30)
    assert len(server.wait_for(3)) == 3
