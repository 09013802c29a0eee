"""OAuth2 (XOAUTH2) against a real aiosmtpd server over STARTTLS and a local token
endpoint: tokens obtained, cached, refreshed once when refused; the endpoint's refusals
named by field; no token or secret in logs or repr."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest
from django.core.cache.backends import locmem

from datasources.errors import PluginError, TransientError
from datasources.models import Datasource
from datasources.plugins import get_plugin
from datasources.plugins.smtp import oauth
from datasources.plugins.smtp.config import Auth, OAuth2Provider, OAuth2Secret, Security
from tests.support.oauth2 import GOOGLE, MICROSOFT, TokenEndpoint, XOAuth2Handler
from tests.support.smtp_server import free_port

MAILBOX = "mailbox@example.com"
CLIENT_SECRET = "GOCSPX-client-secret-value"
REFRESH_TOKEN = "1//0refresh-token-value"
FIELDS = {"from": MAILBOX, "to": "someone@example.org", "subject": "Hi", "body": "Hello"}


@pytest.fixture
def endpoint(settings):
    started = TokenEndpoint().start()
    settings.KILN_OAUTH2_GOOGLE_TOKEN_URL = f"{started.url}/token"
    settings.KILN_OAUTH2_MICROSOFT_TOKEN_URL = f"{started.url}/{{tenant}}/v2.0/token"
    settings.KILN_SMTP_REUSE_SECONDS = 0  # each send signs in again
    yield started
    started.stop()


@pytest.fixture
def start_server(smtp_factory, endpoint, trust_test_ca):
    def start(style: str = GOOGLE, accepts=None) -> tuple:
        handler = XOAuth2Handler(accepts=accepts or endpoint.accepts, style=style)
        server = smtp_factory(security=Security.STARTTLS, handler=handler)
        return server, handler

    return start


def oauth_settings(server, **overrides):
    values = {
        "auth": Auth.OAUTH2,
        "username": MAILBOX,
        "password": "",
        "oauth_provider": GOOGLE,
        "client_id": "client-id.apps.example",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
    }
    return server.settings(**{**values, **overrides})


def send(settings):
    return get_plugin("smtp").run(settings, "send_email", FIELDS)


def test_xoauth2_is_accepted_with_the_token_from_the_endpoint(start_server, endpoint):
    server, handler = start_server()
    send(oauth_settings(server))
    assert len(server.received) == 1
    assert handler.xoauth2_attempts == [(MAILBOX, endpoint.issued[0])]
    path, form = endpoint.calls[0]
    assert path == "/token"
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == REFRESH_TOKEN
    assert form["client_secret"] == CLIENT_SECRET


def test_the_token_is_cached_across_two_sends(start_server, endpoint):
    server, handler = start_server()
    send(oauth_settings(server))
    send(oauth_settings(server))
    assert len(server.received) == 2
    assert len(endpoint.calls) == 1
    assert [token for _, token in handler.xoauth2_attempts] == [endpoint.issued[0]] * 2


def test_a_token_near_its_expiry_is_not_cached(start_server, endpoint):
    endpoint.expires_in = oauth.EXPIRY_MARGIN_SECONDS
    server, _ = start_server()
    send(oauth_settings(server))
    send(oauth_settings(server))
    assert len(endpoint.calls) == 2


def test_a_cached_token_past_its_lifetime_is_fetched_again(
    start_server, endpoint, settings, monkeypatch
):
    """Cached for a second (expires_in just past the margin), then the cache's clock
    moves on: the next send asks the endpoint again, which no server refusal caused."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t"}
    }
    endpoint.expires_in = oauth.EXPIRY_MARGIN_SECONDS + 1
    server, handler = start_server()
    send(oauth_settings(server))
    send(oauth_settings(server))
    assert len(endpoint.calls) == 1  # still within its lifetime
    later = time.time() + 2
    monkeypatch.setattr(locmem, "time", SimpleNamespace(time=lambda: later))
    send(oauth_settings(server))
    assert len(endpoint.calls) == 2
    assert [token for _, token in handler.xoauth2_attempts] == [
        endpoint.issued[0],
        endpoint.issued[0],
        endpoint.issued[1],
    ]
    assert len(server.received) == 3


@pytest.mark.parametrize("style", [GOOGLE, MICROSOFT])
def test_a_revoked_token_is_refreshed_once_and_the_send_succeeds(start_server, endpoint, style):
    server, handler = start_server(style)
    send(oauth_settings(server))
    endpoint.revoke_all()  # the cached token stops working
    send(oauth_settings(server))
    assert len(server.received) == 2
    assert len(endpoint.calls) == 2
    tokens = [token for _, token in handler.xoauth2_attempts]
    assert tokens == [endpoint.issued[0], endpoint.issued[0], endpoint.issued[1]]


@pytest.mark.parametrize("style", [GOOGLE, MICROSOFT])
def test_a_server_that_keeps_refusing_gets_one_refresh_then_a_clear_error(
    start_server, endpoint, style
):
    server, handler = start_server(style, accepts=lambda token: False)
    with pytest.raises(PluginError) as caught:
        send(oauth_settings(server))
    assert caught.value.permanent
    assert caught.value.field == "refresh_token"
    assert "Connect the account again" in caught.value.message
    assert "535" in caught.value.message
    assert len(endpoint.calls) == 2
    assert len(handler.xoauth2_attempts) == 2
    assert server.received == []


def test_a_530_after_xoauth2_points_to_the_tokens_account(start_server, endpoint):
    server, _ = start_server()
    server.refuse(FIELDS["to"], "530 5.7.57 Client not authenticated to send mail")
    with pytest.raises(PluginError) as caught:
        send(oauth_settings(server))
    assert caught.value.field == "refresh_token" and caught.value.code == "auth_required"
    assert "Choose" not in caught.value.message
    assert "granted for this username's mailbox" in caught.value.message


def test_invalid_grant_is_an_error_naming_the_refresh_token(start_server, endpoint):
    server, handler = start_server()
    description = "Token has been expired or revoked."
    endpoint.answers.append((400, {"error": "invalid_grant", "error_description": description}))
    with pytest.raises(PluginError) as caught:
        send(oauth_settings(server))
    assert caught.value.permanent
    assert caught.value.field == "refresh_token"
    assert description in caught.value.message
    assert handler.xoauth2_attempts == []


def test_invalid_client_is_an_error_naming_the_client_secret(start_server, endpoint):
    server, _ = start_server()
    endpoint.answers.append((401, {"error": "invalid_client", "error_description": "Unauthorized"}))
    with pytest.raises(PluginError) as caught:
        send(oauth_settings(server))
    assert caught.value.field == "client_secret"
    assert "Unauthorized" in caught.value.message


def test_a_failing_token_endpoint_is_a_transient_error(start_server, endpoint):
    server, _ = start_server()
    endpoint.answers.append((503, {"error": "temporarily_unavailable"}))
    with pytest.raises(TransientError):
        send(oauth_settings(server))


def test_an_unreachable_token_endpoint_is_a_transient_error(start_server, settings):
    server, _ = start_server()
    settings.KILN_OAUTH2_GOOGLE_TOKEN_URL = f"http://127.0.0.1:{free_port()}/token"
    with pytest.raises(TransientError) as caught:
        send(oauth_settings(server))
    assert "token endpoint" in caught.value.message


def test_no_refresh_token_yet_says_to_connect(start_server, endpoint):
    server, _ = start_server()
    with pytest.raises(PluginError) as caught:
        send(oauth_settings(server, refresh_token=""))
    assert caught.value.field == "refresh_token"
    assert "Connect" in caught.value.message
    assert endpoint.calls == []


def test_microsoft_tokens_come_from_the_tenants_endpoint_with_the_smtp_scope(
    start_server, endpoint
):
    server, _ = start_server(MICROSOFT)
    send(oauth_settings(server, oauth_provider=MICROSOFT, oauth_tenant="contoso.example"))
    path, form = endpoint.calls[0]
    assert path == "/contoso.example/v2.0/token"
    assert form["scope"] == "https://outlook.office.com/SMTP.Send offline_access"


def test_a_server_without_xoauth2_is_an_error_on_the_auth_field(
    smtp_factory, endpoint, trust_test_ca
):
    server = smtp_factory(security=Security.STARTTLS, users={"someone": "pw"})
    with pytest.raises(PluginError) as caught:
        send(oauth_settings(server))
    assert caught.value.field == "auth"
    assert "XOAUTH2" in caught.value.message
    assert endpoint.calls == []


def test_test_connection_gets_a_token_and_authenticates(start_server, endpoint):
    server, handler = start_server()
    check = get_plugin("smtp").test_connection(oauth_settings(server))
    assert check.ok, check.message
    assert "authenticated" in check.message
    assert handler.xoauth2_attempts == [(MAILBOX, endpoint.issued[0])]


def test_secrets_and_tokens_stay_out_of_repr_and_logs(start_server, endpoint, caplog):
    server, _ = start_server(accepts=lambda token: False)
    settings = oauth_settings(server)
    with caplog.at_level(logging.DEBUG), pytest.raises(PluginError) as caught:
        send(settings)
    said = [repr(settings), caplog.text, caught.value.message, str(caught.value)]
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, *endpoint.issued):
        assert not any(secret in text for text in said), secret


def test_a_rotated_refresh_token_is_stored_on_the_datasource(start_server, endpoint, team):
    server, _ = start_server(MICROSOFT)
    endpoint.rotate = True
    config = {
        "host": "localhost",
        "port": server.port,
        "security": Security.STARTTLS,
        "auth": Auth.OAUTH2,
        "username": MAILBOX,
        "oauth_provider": MICROSOFT,
        "oauth_tenant": "organizations",
        "client_id": "client-id",
        "timeout": 5,
    }
    secret = OAuth2Secret(CLIENT_SECRET, REFRESH_TOKEN).dump()
    datasource = Datasource.objects.create(
        workspace=team.workspace, name="M365", kind="smtp", config=config, secret=secret
    )
    send(datasource.settings())
    datasource.refresh_from_db()
    assert datasource.settings().refresh_token == "rotated-1"
    assert datasource.settings().client_secret == CLIENT_SECRET
    send(datasource.settings())  # the access token cached for the new refresh token
    assert len(endpoint.calls) == 1
    assert len(server.received) == 2


def test_what_a_provider_said_is_one_line_cut_to_the_limit():
    """One helper for the token endpoint's refusals and the callback's errors."""
    said = oauth.provider_said("invalid_grant", "Bad\r\n\tcode " + "x" * 400, None)
    assert said.startswith("invalid_grant: Bad code xxx") and len(said) == oauth.SAID_LIMIT
    assert oauth.provider_said("access_denied", "  ") == "access_denied"
    assert OAuth2Provider.label("google") == "Google" and OAuth2Provider.label("x") == "x"
