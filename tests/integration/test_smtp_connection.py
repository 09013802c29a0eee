"""Test connection, and the connection half of sending, against real SMTP servers."""

from __future__ import annotations

import socket

import pytest

from datasources.plugins import get_plugin
from datasources.plugins.smtp.config import Auth, Security
from tests.support.smtp_server import free_port

smtp = get_plugin("smtp")
USERS = {"mailer": "s3cret-Pa55"}


def test_it_connects_without_tls(smtp_server):
    check = smtp.test_connection(smtp_server.settings())
    assert check.ok, check.message
    assert "Connected to 127.0.0.1" in check.message


def test_it_connects_with_starttls_and_auth(smtp_factory, trust_test_ca):
    server = smtp_factory(security=Security.STARTTLS, users=USERS)
    check = smtp.test_connection(server.settings())
    assert check.ok, check.message
    assert "STARTTLS and authenticated" in check.message
    assert server.auth_attempts == [("mailer", server.auth_attempts[0][1])]


def test_it_connects_with_implicit_tls_and_auth(smtp_factory, trust_test_ca):
    server = smtp_factory(security=Security.SSL, users=USERS)
    check = smtp.test_connection(server.settings())
    assert check.ok, check.message
    assert "SSL/TLS" in check.message


def test_it_reports_a_refused_password_with_the_server_reply(smtp_factory, trust_test_ca):
    server = smtp_factory(security=Security.STARTTLS, users=USERS)
    check = smtp.test_connection(server.settings(password="wrong"))
    assert not check.ok
    assert check.message.startswith("Authentication refused by the server: 535")
    assert "wrong" not in check.message


def test_it_refuses_an_untrusted_certificate_before_auth(smtp_factory):
    server = smtp_factory(security=Security.STARTTLS, users=USERS)
    check = smtp.test_connection(server.settings())
    assert not check.ok
    assert "certificate is not trusted" in check.message
    assert server.auth_attempts == []


def test_it_connects_to_a_self_signed_server_with_verification_off(smtp_factory):
    server = smtp_factory(security=Security.SSL, users=USERS)
    check = smtp.test_connection(server.settings(verify_certificate=False))
    assert check.ok, check.message


def test_it_refuses_a_certificate_for_another_host(smtp_factory, trust_test_ca):
    server = smtp_factory(security=Security.STARTTLS, users=USERS)
    # The certificate names localhost and 127.0.0.1, not 127.0.0.2.
    check = smtp.test_connection(server.settings(host="127.0.0.2", port=server.port))
    assert not check.ok
    assert "certificate" in check.message or "Connection refused" in check.message


def test_it_fails_before_auth_when_starttls_is_not_offered(smtp_factory):
    server = smtp_factory(security=Security.STARTTLS, users=USERS, offer_starttls=False)
    check = smtp.test_connection(server.settings(host="127.0.0.1"))
    assert not check.ok
    assert "does not offer STARTTLS" in check.message
    assert server.auth_attempts == []


def test_it_reports_tls_against_a_plain_server(smtp_server):
    check = smtp.test_connection(smtp_server.settings(security=Security.SSL))
    assert not check.ok
    assert check.message.startswith("TLS failed")


def test_it_refuses_a_password_in_clear_over_the_network(smtp_server, monkeypatch):
    from datasources.plugins.smtp import transport

    # A loopback server stands in for a remote one: only the address check differs.
    monkeypatch.setattr(transport, "ip_address", lambda _: _Remote())
    settings = smtp_server.settings(auth=Auth.PASSWORD, username="u", password="p")
    check = smtp.test_connection(settings)
    assert not check.ok
    assert "unencrypted connection is refused" in check.message


class _Remote:
    is_loopback = False


def test_it_reports_connection_refused():
    port = free_port()
    check = smtp.test_connection(_settings("127.0.0.1", port))
    assert not check.ok
    assert check.message.startswith(f"Connection refused by 127.0.0.1:{port}")


def test_it_reports_a_dns_failure():
    check = smtp.test_connection(_settings("no-such-host.invalid", 25))
    assert not check.ok
    assert "Could not resolve the host name 'no-such-host.invalid'" in check.message


def test_it_times_out_naming_the_stage(silent_server):
    check = smtp.test_connection(_settings("127.0.0.1", silent_server.port, timeout=1))
    assert not check.ok
    assert check.message.startswith(
        f"Timed out after 1 s while waiting for the server's greeting "
        f"(127.0.0.1:{silent_server.port})."
    )


def test_it_refuses_a_metadata_address():
    check = smtp.test_connection(_settings("169.254.169.254", 25))
    assert not check.ok
    assert "cloud metadata" in check.message


def _settings(host, port, **kw):
    from datasources.plugins.smtp.config import SmtpSettings

    return SmtpSettings(host=host, port=port, security=Security.NONE, auth=Auth.NONE, **kw)


@pytest.fixture(autouse=True)
def _no_real_dns_for_invalid(monkeypatch):
    # .invalid never resolves (RFC 6761); answer at once instead of waiting on a resolver.
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
