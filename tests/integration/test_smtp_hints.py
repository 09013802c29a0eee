"""Settings that do not match the server: each error names the setting to change, against
real servers (a security mode for the other kind of port, a server that wants
authentication or STARTTLS before it takes mail)."""

from __future__ import annotations

import pytest

from datasources.errors import PluginError
from datasources.plugins import get_plugin
from datasources.plugins.smtp import transport
from datasources.plugins.smtp.config import Auth, Security

smtp = get_plugin("smtp")
USERS = {"mailer": "s3cret-Pa55"}
EMAIL = {"from": "a@kiln.test", "to": "b@example.com", "subject": "Hi", "body": "Hello"}


def _connect_error(settings) -> PluginError:
    with pytest.raises(PluginError) as raised, transport.connection(settings):
        pass
    return raised.value


def _send_error(settings) -> PluginError:
    with pytest.raises(PluginError) as raised:
        smtp.execute(settings, "send_email", EMAIL)
    return raised.value


def test_starttls_on_an_implicit_tls_port_suggests_ssl_tls(smtp_factory, trust_test_ca):
    server = smtp_factory(security=Security.SSL)
    error = _connect_error(server.settings(security=Security.STARTTLS, timeout=0.3))
    assert error.field == "security"
    assert "waiting for the server's greeting" in error.message
    assert "choose SSL/TLS" in error.message


def test_ssl_tls_on_a_starttls_port_suggests_the_other_mode(smtp_factory, trust_test_ca):
    server = smtp_factory(security=Security.STARTTLS)
    error = _connect_error(server.settings(security=Security.SSL, timeout=2))
    assert error.field == "security"
    assert error.message.startswith("TLS failed")
    assert "465 is usually SSL/TLS, 587 STARTTLS" in error.message


def test_a_silent_server_under_ssl_tls_gets_no_starttls_hint(silent_server):
    from datasources.plugins.smtp.config import SmtpSettings

    settings = SmtpSettings(
        host="127.0.0.1", port=silent_server.port, security=Security.SSL, timeout=0.3
    )
    error = _connect_error(settings)
    assert "negotiating TLS" in error.message and "choose SSL/TLS" not in error.message


# A server requiring AUTH over plain text on loopback: aiosmtpd warns, the test knows.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("pipelining", [False, True])
def test_authentication_required_is_reported_on_auth(smtp_factory, pipelining):
    server = smtp_factory(users=USERS, smtp_options={"auth_required": True})
    server.handler.pipelining = pipelining
    error = _send_error(server.settings(auth=Auth.NONE, username="", password=""))
    assert error.field == "auth" and error.code == "auth_required" and error.permanent
    assert "530" in error.message and "Username and password" in error.message
    assert server.received == []


def test_a_530_to_a_recipient_is_reported_on_auth(smtp_server):
    smtp_server.refuse("b@example.com", "530 5.7.1 Client was not authenticated")
    error = _send_error(smtp_server.settings())
    assert error.field == "auth"
    assert "Client was not authenticated" in error.message


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_530_after_signing_in_with_a_password_does_not_say_choose_a_password(smtp_factory):
    """Signed in already: the advice is the account, not a choice already made."""
    server = smtp_factory(users=USERS)
    server.refuse("b@example.com", "530 5.7.57 Client not authenticated to send mail")
    error = _send_error(server.settings())
    assert error.field == "username" and error.code == "auth_required"
    assert "Choose" not in error.message
    assert "check them, and that the server lets this account send" in error.message


def test_starttls_required_is_reported_on_security(smtp_factory):
    server = smtp_factory(security=Security.STARTTLS, smtp_options={"require_starttls": True})
    error = _send_error(server.settings(host="127.0.0.1", security=Security.NONE))
    assert error.field == "security" and error.code == "tls_required"
    assert "Choose STARTTLS" in error.message
    assert server.received == []
