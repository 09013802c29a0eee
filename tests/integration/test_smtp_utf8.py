"""UTF-8 where real servers (Exim, Postfix with Dovecot) take it: a username or
password with non-ASCII characters, in every AUTH mechanism Kiln uses, and addresses
with a UTF-8 local part, sent with SMTPUTF8 (RFC 6531)."""

from __future__ import annotations

import email
import hmac
from dataclasses import dataclass
from email import policy

import pytest
from aiosmtpd.smtp import AuthResult

from datasources.errors import FieldError
from datasources.plugins import get_plugin
from datasources.plugins.smtp.config import Security
from tests.support.smtp_server import Handler

smtp = get_plugin("smtp")
USERS = {"mäiler": "s3cret-pässwörd-€"}


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_it_signs_in_with_a_non_ascii_password(smtp_factory, trust_test_ca, mechanism):
    others = [m for m in ("PLAIN", "LOGIN") if m != mechanism]
    server = smtp_factory(
        security=Security.STARTTLS,
        users=USERS,
        smtp_options={"auth_exclude_mechanism": others},
    )
    check = smtp.test_connection(server.settings())
    assert check.ok, check.message
    assert server.auth_attempts == [("mäiler", mechanism)]


def test_a_wrong_non_ascii_password_is_the_servers_535(smtp_factory, trust_test_ca):
    server = smtp_factory(security=Security.STARTTLS, users=USERS)
    check = smtp.test_connection(server.settings(password="fälsch"))
    assert not check.ok
    assert check.message.startswith("Authentication refused by the server: 535")


@dataclass
class CramMd5Handler(Handler):
    """Offers AUTH CRAM-MD5 (RFC 2195) and checks the digest keyed with ``password``."""

    password: str = ""
    challenge: bytes = b"<1896.697170952@kiln.test>"

    async def auth_CRAM__MD5(self, server, args):
        answer = await server.challenge_auth(self.challenge, encode_to_b64=True)
        user, _, digest = answer.decode("utf-8").rpartition(" ")
        expected = hmac.HMAC(self.password.encode("utf-8"), self.challenge, "md5").hexdigest()
        ok = hmac.compare_digest(digest, expected)
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)


def test_it_signs_in_with_cram_md5_and_a_non_ascii_password(smtp_factory, trust_test_ca):
    password = USERS["mäiler"]
    server = smtp_factory(
        security=Security.STARTTLS,
        users=USERS,
        handler=CramMd5Handler(password=password),
        smtp_options={"auth_exclude_mechanism": ["PLAIN", "LOGIN"]},
    )
    check = smtp.test_connection(server.settings())
    assert check.ok, check.message
    wrong = smtp.test_connection(server.settings(password=password + "x"))
    assert not wrong.ok and "535" in wrong.message


def _send(server, **fields):
    values = {"from": "app@kiln.test", "to": "ann@example.com", "subject": "Hi", "body": "Hello"}
    return smtp.execute(server.settings(), "send_email", {**values, **fields})


def test_it_sends_to_a_utf8_local_part_with_smtputf8(smtp_server):
    _send(smtp_server, to="Jürgen <jürgen@kiln.test>", cc="用户@例子.广告")
    received = smtp_server.received[0]
    assert received.rcpt_tos == ["jürgen@kiln.test", "用户@xn--fsqu00a.xn--4rr70v"]
    # The addresses are UTF-8 as they are (RFC 6532); a display name stays an encoded word.
    parsed = email.message_from_string(received.data.decode("utf-8"), policy=policy.default)
    assert parsed["To"].addresses[0].display_name == "Jürgen"
    assert parsed["To"].addresses[0].addr_spec == "jürgen@kiln.test"
    assert "Cc: 用户@xn--fsqu00a.xn--4rr70v\r\n".encode() in received.data


def test_a_utf8_reply_to_alone_sends_with_smtputf8(smtp_server):
    _send(smtp_server, set_reply_to=True, reply_to="jürgen@kiln.test")
    assert "Reply-To: jürgen@kiln.test\r\n".encode() in smtp_server.received[0].data


def test_a_utf8_local_part_to_a_server_without_smtputf8_is_refused(smtp_factory):
    server = smtp_factory(smtp_options={"enable_SMTPUTF8": False})
    with pytest.raises(FieldError) as caught:
        _send(server, to="jürgen@kiln.test")
    assert caught.value.field == "to"
    assert "SMTPUTF8" in caught.value.message
    assert server.received == []


def test_an_invalid_utf8_local_part_is_still_refused(smtp_server):
    with pytest.raises(FieldError) as caught:
        _send(smtp_server, to="jür gen@kiln.test")
    assert caught.value.field == "to"
