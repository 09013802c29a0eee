"""After a refusal the client says QUIT rather than dropping the connection (RFC 5321
4.1.1.10): seen against Exim, which logged each greylisted or refused attempt as an
incomplete transaction lost mid-session."""

from __future__ import annotations

import pytest

from datasources.errors import PluginError, TransientError
from datasources.plugins import get_plugin
from datasources.plugins.smtp.config import Security
from tests.support.smtp_server import Handler

smtp = get_plugin("smtp")
FIELDS = {"from": "app@kiln.test", "to": "ann@example.com", "subject": "Hi", "body": "Hi"}


def send(server, **fields):
    return smtp.execute(server.settings(), "send_email", {**FIELDS, **fields})


@pytest.mark.parametrize("pipelining", [False, True])
def test_it_quits_after_a_greylisting_451(smtp_factory, pipelining):
    server = smtp_factory(handler=Handler(pipelining=pipelining))
    server.greylist(60)
    with pytest.raises(TransientError):
        send(server)
    assert server.handler.quits == 1


def test_it_quits_after_a_refused_password(smtp_factory, trust_test_ca):
    server = smtp_factory(security=Security.STARTTLS, users={"mailer": "right"})
    with pytest.raises(PluginError) as caught:
        smtp.execute(server.settings(password="wrong"), "send_email", dict(FIELDS))
    assert caught.value.field == "password"
    assert server.handler.quits == 1


def test_it_quits_after_a_refused_message(smtp_server):
    smtp_server.reply_to_data("554 5.7.1 Spam")
    with pytest.raises(PluginError):
        send(smtp_server)
    assert smtp_server.handler.quits == 1


def test_it_drops_a_pipelined_message_the_server_waits_for(smtp_factory):
    # One recipient refused, the other taken, DATA answered 354: the message must not
    # end with the dot, so the connection is closed without QUIT (which would be data).
    server = smtp_factory(handler=Handler(pipelining=True))
    server.refuse("bad@example.com")
    with pytest.raises(PluginError):
        send(server, to="ann@example.com, bad@example.com")
    assert server.handler.quits == 0
    assert server.received == []
