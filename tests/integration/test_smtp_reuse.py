"""An SMTP connection kept for the next send through the same server and user: reset
between messages, and dropped on any error, after an idle time and when the settings
change."""

from __future__ import annotations

import socket
import time

import pytest

from datasources.errors import PluginError
from datasources.plugins.smtp import transport
from datasources.plugins.smtp.plugin import SmtpPlugin

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
