"""The message's size, declared to the server (SIZE, RFC 1870) and checked against the
limit it announces before anything is sent: Postfix takes 10 MB by default, and a 10 MB
attachment is 13.7 MB once encoded."""

from __future__ import annotations

import base64

import pytest

from datasources.errors import PluginError
from datasources.plugins import get_plugin
from datasources.plugins.smtp.compose import build_email
from datasources.plugins.smtp.stored import message_pieces, message_size, stored_form
from tests.support.smtp_server import Handler

smtp = get_plugin("smtp")


def data_url(content: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(content).decode()


def fields(*sizes: int, **more) -> dict:
    files = [{"name": f"f{i}.bin", "data": data_url(b"\x07" * n)} for i, n in enumerate(sizes)]
    values = {"from": "app@kiln.test", "to": "ann@example.com", "subject": "Hi", "body": "Hi"}
    return {**values, "attachments": files, **more}


@pytest.mark.parametrize("sizes", [(), (0,), (1,), (56, 57, 58), (57 * 76,), (100_003, 3)])
def test_the_declared_size_is_the_size_sent(sizes):
    email = build_email(fields(*sizes), placeholders=True)
    message, envelope = stored_form(email)
    sent = b"".join(bytes(p) for p in message_pieces(message, envelope, email.files))
    assert message_size(message, envelope, email.files) == len(sent)


class SizeHandler(Handler):
    """Keeps the MAIL FROM parameters of each transaction."""

    def __init__(self):
        super().__init__()
        self.mail_options: list[list[str]] = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mail_options.append(list(mail_options))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"


def test_it_declares_the_size(smtp_factory):
    server = smtp_factory(handler=SizeHandler())
    smtp.execute(server.settings(), "send_email", fields(5000))
    declared = [o for o in server.handler.mail_options[0] if o.startswith("SIZE=")]
    assert declared == [f"SIZE={len(server.received[0].data)}"]


def test_a_message_over_the_servers_limit_is_refused_before_it_is_sent(smtp_factory):
    server = smtp_factory(handler=SizeHandler(), smtp_options={"data_size_limit": 100_000})
    with pytest.raises(PluginError) as caught:
        smtp.execute(server.settings(), "send_email", fields(80_000))
    assert caught.value.field == "attachments"
    assert caught.value.code == "too_large"
    assert caught.value.permanent
    assert "100,000 bytes the server takes" in caught.value.message
    # Refused before MAIL FROM: nothing was uploaded.
    assert server.handler.mail_options == [] and server.received == []


def test_a_body_over_the_limit_is_refused_on_the_body(smtp_factory):
    server = smtp_factory(smtp_options={"data_size_limit": 10_000})
    with pytest.raises(PluginError) as caught:
        smtp.execute(server.settings(), "send_email", fields(body="x " * 10_000))
    assert caught.value.field == "body"
