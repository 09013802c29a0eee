"""UTF-8 where real servers (Exim, Postfix with Dovecot) take it: a username or
password with non-ASCII characters, in every AUTH mechanism Kiln uses."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import pytest
from aiosmtpd.smtp import AuthResult

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
