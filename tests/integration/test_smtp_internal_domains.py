"""Internal mail domains that email-validator calls special-use but mail servers
deliver: root@localhost (all a stock Debian Exim takes), user@corp.local (an internal
Exchange). .invalid and the like stay refused."""

from __future__ import annotations

import pytest

from datasources.errors import FieldError
from datasources.plugins import get_plugin

smtp = get_plugin("smtp")


def send(server, **fields):
    values = {"from": "app@localhost", "to": "root@localhost", "subject": "Hi", "body": "Hi"}
    return smtp.execute(server.settings(), "send_email", {**values, **fields})


def test_it_sends_to_localhost_and_dot_local(smtp_server):
    send(smtp_server, cc='"root@localhost" <Root@LocalHost>, Ann <ann@corp.local>')
    received = smtp_server.received[0]
    assert received.mail_from == "app@localhost"
    assert received.rcpt_tos == ["root@localhost", "Root@localhost", "ann@corp.local"]
    assert received.message["To"] == "root@localhost"


def test_an_idn_dot_local_domain_is_encoded(smtp_server):
    send(smtp_server, to="ann@bücher.local")
    assert smtp_server.received[0].rcpt_tos == ["ann@xn--bcher-kva.local"]


@pytest.mark.parametrize(
    "address", ["a@example.invalid", "a@x.onion", "a@bad_label.local", "a@.localhost"]
)
def test_other_special_and_bad_domains_stay_refused(smtp_server, address):
    with pytest.raises(FieldError) as caught:
        send(smtp_server, to=address)
    assert caught.value.field == "to"
    assert ".test" not in caught.value.message
    assert smtp_server.received == []
