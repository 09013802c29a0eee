"""Per-datasource TLS trust against real TLS servers: a CA certificate given in the
datasource, and a pinned server certificate. None of these tests trusts the test CA
process-wide (no ``trust_test_ca``): only the datasource's own settings do."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from datasources.errors import PluginError
from datasources.plugins import get_plugin
from datasources.plugins.smtp import transport
from datasources.plugins.smtp.config import Security
from datasources.plugins.smtp.trust import fingerprint
from tests.support.certs import make_certificates

smtp = get_plugin("smtp")
USERS = {"mailer": "s3cret-Pa55"}
EMAIL = {"from": "a@kiln.test", "to": "b@example.com", "subject": "Hi", "body": "Hello"}


def _ca_pem(certs) -> str:
    return certs.ca_file.read_text()


def _server_fingerprint(certs) -> str:
    cert = x509.load_pem_x509_certificate(certs.cert_file.read_bytes())
    return fingerprint(cert.public_bytes(serialization.Encoding.DER))


@pytest.fixture
def other_ca(tmp_path) -> str:
    """A CA that did not sign the test servers' certificate."""
    return make_certificates(tmp_path / "other").ca_file.read_text()


@pytest.mark.parametrize("security", [Security.STARTTLS, Security.SSL])
def test_a_server_signed_by_the_datasource_ca_verifies(smtp_factory, certs, security):
    server = smtp_factory(security=security, users=USERS)
    without = smtp.test_connection(server.settings())
    assert not without.ok
    assert "certificate is not trusted" in without.message
    assert server.auth_attempts == []

    check = smtp.test_connection(server.settings(ca_certificate=_ca_pem(certs)))
    assert check.ok, check.message
    assert "authenticated" in check.message


def test_a_message_goes_through_a_server_trusted_by_its_ca(smtp_factory, certs):
    server = smtp_factory(security=Security.STARTTLS, users=USERS)
    result = smtp.execute(server.settings(ca_certificate=_ca_pem(certs)), "send_email", EMAIL)
    assert result.data["success"] is True
    assert server.wait_for(1)[0].message["Subject"] == "Hi"


def test_another_ca_does_not_make_the_server_trusted(smtp_factory, other_ca):
    server = smtp_factory(security=Security.SSL, users=USERS)
    check = smtp.test_connection(server.settings(ca_certificate=other_ca))
    assert not check.ok
    assert "certificate is not trusted" in check.message


def test_the_datasource_ca_adds_to_the_system_store(certs):
    system = transport.tls_context(_settings()).cert_store_stats()["x509_ca"]
    given = transport.tls_context(_settings(ca_certificate=_ca_pem(certs)))
    assert given.cert_store_stats()["x509_ca"] == system + 1


@pytest.mark.parametrize("security", [Security.STARTTLS, Security.SSL])
def test_a_wrong_pin_fails_naming_the_field_before_the_password(smtp_factory, certs, security):
    server = smtp_factory(security=security, users=USERS)
    pinned = ":".join(["AB"] * 32)
    settings = server.settings(ca_certificate=_ca_pem(certs), certificate_fingerprint=pinned)
    with pytest.raises(PluginError) as raised, transport.connection(settings):
        pass
    error = raised.value
    assert error.field == "certificate_fingerprint" and error.permanent
    assert _server_fingerprint(certs) in error.message and pinned in error.message
    assert server.auth_attempts == []


@pytest.mark.parametrize("security", [Security.STARTTLS, Security.SSL])
def test_the_right_pin_passes(smtp_factory, certs, security):
    server = smtp_factory(security=security, users=USERS)
    settings = server.settings(
        ca_certificate=_ca_pem(certs), certificate_fingerprint=_server_fingerprint(certs)
    )
    check = smtp.test_connection(settings)
    assert check.ok, check.message


def test_a_pin_alone_vouches_for_a_server_with_verification_off(smtp_factory, certs):
    # Self-signed, as far as Kiln knows: no CA given, chain checks off, the pin decides.
    server = smtp_factory(security=Security.STARTTLS, users=USERS)
    right = server.settings(
        verify_certificate=False, certificate_fingerprint=_server_fingerprint(certs)
    )
    assert smtp.test_connection(right).ok
    wrong = server.settings(verify_certificate=False, certificate_fingerprint="00" * 32)
    check = smtp.test_connection(wrong)
    assert not check.ok and "not the pinned one" in check.message
    assert len(server.auth_attempts) == 1


def test_a_reused_connection_is_not_kept_across_a_trust_change(smtp_factory, certs):
    server = smtp_factory(security=Security.STARTTLS, users=USERS)
    trusted = server.settings(ca_certificate=_ca_pem(certs))
    try:
        with transport.connection(trusted, reuse_seconds=30):
            pass
        pinned = server.settings(ca_certificate=_ca_pem(certs), certificate_fingerprint="00" * 32)
        refused = pytest.raises(PluginError, match="not the pinned one")
        with refused, transport.connection(pinned, reuse_seconds=30):
            pass
    finally:
        transport.close_reused()


def _settings(**overrides):
    from datasources.plugins.smtp.config import Auth, SmtpSettings

    return SmtpSettings(host="localhost", port=465, auth=Auth.NONE, **overrides)
