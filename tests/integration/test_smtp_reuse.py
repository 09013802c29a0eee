"""An SMTP connection kept for the next send through the same server and user: reset
between messages, and dropped on any error, after an idle time and when the settings
change."""

from __future__ import annotations

import socket
import time

import pytest

from datasources.errors import PluginError, TransientError
from datasources.plugins.smtp import transport
from datasources.plugins.smtp.plugin import SmtpPlugin
from tests.support.smtp_server import Handler

MESSAGE = b"From: a@kiln.test\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello\r\n"


@pytest.fixture(autouse=True)
def _nothing_kept():
    transport.close_reused()
    yield
    transport.close_reused()


def send(settings, reuse: float = 30):
    with transport.connection(settings, reuse_seconds=reuse) as session:
        session.send("a@kiln.test", ["b@example.com"], MESSAGE, smtputf8=False)
        return session.client


def test_a_second_send_reuses_the_connection(smtp_server):
    first = send(smtp_server.settings())
    second = send(smtp_server.settings())
    assert second is first
    assert len(smtp_server.wait_for(2)) == 2


def test_without_reuse_each_send_has_its_own_connection(smtp_server):
    first = send(smtp_server.settings(), reuse=0)
    assert first.sock is None  # closed
    assert send(smtp_server.settings(), reuse=0) is not first


def test_an_error_drops_the_connection(smtp_server):
    first = send(smtp_server.settings())
    smtp_server.reply_to_data("451 4.3.0 Try again")
    with pytest.raises(PluginError, match="451"):
        send(smtp_server.settings())
    assert first.sock is None
    third = send(smtp_server.settings())
    assert third is not first
    assert len(smtp_server.wait_for(2)) == 2


def test_changed_settings_close_the_kept_connection(smtp_server):
    first = send(smtp_server.settings())
    second = send(smtp_server.settings(timeout=7))
    assert second is not first
    assert first.sock is None


def test_an_idle_connection_is_not_reused(smtp_server):
    first = send(smtp_server.settings(), reuse=0.2)
    time.sleep(0.3)
    assert send(smtp_server.settings(), reuse=0.2) is not first
    assert first.sock is None


def test_a_connection_lost_while_kept_is_replaced(smtp_server):
    first = send(smtp_server.settings())
    # As when the server drops an idle connection: the kept socket is dead.
    first.sock.shutdown(socket.SHUT_RDWR)
    second = send(smtp_server.settings())
    assert second is not first
    assert len(smtp_server.wait_for(2)) == 2


def test_the_plugin_reuses_per_setting(smtp_server, settings):
    plugin = SmtpPlugin()
    fields = {"from": "a@kiln.test", "to": "b@example.com", "subject": "s", "body": "x"}
    settings.KILN_SMTP_REUSE_SECONDS = 30
    plugin.execute(smtp_server.settings(), "send_email", fields)
    plugin.execute(smtp_server.settings(), "send_email", fields)
    settings.KILN_SMTP_REUSE_SECONDS = 0
    plugin.execute(smtp_server.settings(), "send_email", fields)
    assert len(smtp_server.wait_for(3)) == 3


class MessagesPerConnection(Handler):
    """Answers MAIL FROM with 421 after ``limit`` messages on one connection and closes
    it, as Exim does past smtp_accept_max_per_connection."""

    def __init__(self, limit: int, pipelining: bool, drop: bool = False):
        super().__init__(pipelining=pipelining)
        self.limit = limit
        #: Close the connection without a word instead.
        self.drop = drop

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        session.kiln_messages = getattr(session, "kiln_messages", 0) + 1
        if session.kiln_messages > self.limit:
            if self.drop:
                server.transport.abort()
                return "421 never heard"
            return "421 too many messages in this connection"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"


@pytest.mark.parametrize(("pipelining", "drop"), [(False, False), (True, False), (True, True)])
def test_a_kept_connection_the_server_ends_at_mail_from_is_replaced_at_once(
    smtp_factory, pipelining, drop
):
    server = smtp_factory(handler=MessagesPerConnection(2, pipelining, drop))
    settings = server.settings()
    before = server.handler.connections  # aiosmtpd's own check that it listens
    for _ in range(5):
        transport.send_message(
            settings, "a@kiln.test", ["b@example.com"], MESSAGE, reuse_seconds=30, smtputf8=False
        )
    assert len(server.wait_for(5)) == 5
    # Two messages a connection: the third and the fifth went at once on a new one.
    assert server.handler.connections - before == 3


def test_a_421_on_a_new_connection_is_still_an_error(smtp_factory):
    server = smtp_factory(handler=MessagesPerConnection(0, pipelining=True))
    with pytest.raises(TransientError, match="421"):
        transport.send_message(
            server.settings(),
            "a@kiln.test",
            ["b@example.com"],
            MESSAGE,
            reuse_seconds=30,
            smtputf8=False,
        )
    assert server.received == []
