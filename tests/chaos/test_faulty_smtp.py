"""The chaos test's SMTP server: each fault looks to a client as it would from a real
server, and the server records what it saw."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest

from tests.support.faulty_smtp import (
    ACCEPTED,
    DROPPED_AFTER_DATA,
    REFUSED_AFTER_DATA,
    REFUSED_RCPT,
    FaultRates,
    FaultySmtpServer,
)

NONE = {
    "greeting_421": 0.0,
    "mail_421": 0.0,
    "drop_before_mail": 0.0,
    "rcpt_451": 0.0,
    "data_451": 0.0,
    "drop_after_data": 0.0,
}


@pytest.fixture
def faulty():
    servers: list[FaultySmtpServer] = []

    def start(**rates) -> FaultySmtpServer:
        server = FaultySmtpServer(seed=1, rates=FaultRates(**{**NONE, **rates})).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def message(to: str = "run-1@example.com") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "app@kiln.test", to, "Run 1"
    msg.set_content("Hello")
    return msg


def test_with_no_fault_it_accepts_and_records(faulty):
    server = faulty()
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.send_message(message())
    assert server.log.outcomes() == {"run-1@example.com": {ACCEPTED: 1}}
    assert server.log.events[0].subject == "Run 1"


def test_it_answers_the_greeting_with_421(faulty):
    server = faulty(greeting_421=1.0)
    with pytest.raises(smtplib.SMTPConnectError) as error:
        smtplib.SMTP(server.host, server.port, timeout=5)
    assert error.value.smtp_code == 421
    assert server.log.faults["greeting_421"] >= 1


def test_it_answers_mail_from_with_421(faulty):
    server = faulty(mail_421=1.0)
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.ehlo()
        assert client.mail("app@kiln.test")[0] == 421
    assert server.log.outcomes() == {}


def test_it_drops_the_connection_at_mail_from(faulty):
    server = faulty(drop_before_mail=1.0)
    client = smtplib.SMTP(server.host, server.port, timeout=5)
    client.ehlo()
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.mail("app@kiln.test")
    client.close()
    assert server.log.outcomes() == {}


def test_it_refuses_a_recipient_with_451(faulty):
    server = faulty(rcpt_451=1.0)
    with (
        smtplib.SMTP(server.host, server.port, timeout=5) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused) as error,
    ):
        client.send_message(message())
    assert error.value.recipients["run-1@example.com"][0] == 451
    assert server.log.outcomes() == {"run-1@example.com": {REFUSED_RCPT: 1}}


def test_it_refuses_the_whole_message_with_451(faulty):
    server = faulty(data_451=1.0)
    with (
        smtplib.SMTP(server.host, server.port, timeout=5) as client,
        pytest.raises(smtplib.SMTPDataError) as error,
    ):
        client.send_message(message())
    assert error.value.smtp_code == 451
    assert server.log.outcomes() == {"run-1@example.com": {REFUSED_AFTER_DATA: 1}}


def test_it_drops_the_connection_after_the_whole_message(faulty):
    server = faulty(drop_after_data=1.0)
    client = smtplib.SMTP(server.host, server.port, timeout=5)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.send_message(message())
    client.close()
    assert server.log.outcomes() == {"run-1@example.com": {DROPPED_AFTER_DATA: 1}}
    assert server.log.events[0].subject == "Run 1"


def test_the_same_seed_draws_the_same_faults():
    draws = []
    for _ in range(2):
        server = FaultySmtpServer(seed=42)
        draws.append([server.log.draw_transaction() for _ in range(200)])
    assert draws[0] == draws[1]
    assert len(set(draws[0])) > 3
