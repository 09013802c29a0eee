"""A server that offers AUTH only once the connection is encrypted (Exim as Debian
configures it, Postfix with smtpd_tls_auth_only), reached without TLS on loopback."""

from __future__ import annotations

from datasources.plugins import get_plugin
from datasources.plugins.smtp.config import Security

smtp = get_plugin("smtp")
USERS = {"mailer": "s3cret"}


def test_it_points_to_starttls_when_auth_waits_for_it(smtp_factory, trust_test_ca):
    server = smtp_factory(security=Security.STARTTLS, users=USERS)
    check = smtp.test_connection(server.settings(host="127.0.0.1", security=Security.NONE))
    assert not check.ok
    assert "only over an encrypted connection" in check.message
    assert "choose STARTTLS" in check.message
    # With STARTTLS, the same server signs in.
    assert smtp.test_connection(server.settings()).ok


def test_without_starttls_either_it_says_there_is_no_auth(smtp_server):
    check = smtp.test_connection(smtp_server.settings(auth="password", username="u", password="p"))
    assert not check.ok
    assert "does not offer authentication" in check.message
