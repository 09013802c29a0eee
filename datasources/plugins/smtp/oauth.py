"""OAuth2 for SMTP (XOAUTH2, as Gmail and Microsoft 365 take it): access tokens from a
saved refresh token, cached until shortly before they expire, and the authorization
code flow with PKCE that yields the refresh token.

The endpoints are settings (``KILN_OAUTH2_*_URL``), so that tests point them at a local
server. Tokens are secrets: never logged, never in an error message, and cached under a
hash only.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, replace
from urllib.parse import urlencode

import httpx
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import transaction

from datasources.errors import PluginError, TransientError
from datasources.models import Datasource
from datasources.plugins.smtp.config import Auth, OAuth2Provider, OAuth2Secret, SmtpSettings

#: What Kiln asks each provider for: sending mail over SMTP, and (Microsoft) a refresh
#: token. Google's SMTP needs its full-mail scope.
SCOPES = {
    OAuth2Provider.GOOGLE: "https://mail.google.com/",
    OAuth2Provider.MICROSOFT: "https://outlook.office.com/SMTP.Send offline_access",
}
#: A cached access token is dropped this long before the provider says it expires, so
#: that a token is never sent in its last seconds (and clock skew does not bite).
EXPIRY_MARGIN_SECONDS = 120
#: What a provider said (its error and description) is cut to this length in messages.
SAID_LIMIT = 300


def token_url(provider: str, tenant: str) -> str:
    return _endpoint(provider, tenant, "TOKEN")


def _endpoint(provider: str, tenant: str, kind: str) -> str:
    template = getattr(django_settings, f"KILN_OAUTH2_{provider.upper()}_{kind}_URL")
    # The tenant is checked by the settings form (letters, digits, dots and hyphens).
    return template.replace("{tenant}", tenant or OAuth2Provider.DEFAULT_TENANT)


def xoauth2(username: str, token: str) -> str:
    """The XOAUTH2 initial response, before base64 (smtplib encodes it)."""
    return f"user={username}\x01auth=Bearer {token}\x01\x01"


# ---------------------------------------------------------------- access tokens


def access_token(s: SmtpSettings) -> str:
    """An access token for ``s``'s mailbox: the cached one, else one the token endpoint
    gives for the refresh token. ``PluginError`` naming the field when the provider
    refuses; ``TransientError`` when it cannot be reached or fails (5xx)."""
    if not s.refresh_token:
        raise PluginError(
            "Refresh token: none is saved yet. Use “Connect” on the datasource page, or "
            "paste a refresh token.",
            field="refresh_token",
            code="oauth2",
        )
    key = _cache_key(s)
    token = cache.get(key)
    if isinstance(token, str) and token:
        return token
    form = {
        "grant_type": "refresh_token",
        "refresh_token": s.refresh_token,
        "client_id": s.client_id,
    }
    answer = _token_request(s.oauth_provider, s.oauth_tenant, form, s.client_secret)
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise _unusable(s.oauth_provider, "no access token")
    lifetime = _seconds(answer.get("expires_in")) - EXPIRY_MARGIN_SECONDS
    rotated = answer.get("refresh_token")
    keys = [key]
    if isinstance(rotated, str) and rotated and rotated != s.refresh_token:
        keep_rotated_refresh_token(s, rotated)
        # The settings read with the new refresh token find the same access token.
        keys.append(_cache_key(replace(s, refresh_token=rotated)))
    if lifetime > 0:
        cache.set_many(dict.fromkeys(keys, token), timeout=lifetime)
    return token


def keep_rotated_refresh_token(s: SmtpSettings, refresh_token: str) -> None:
    """Store the refresh token the provider gave in place of ``s``'s (Microsoft does at
    every refresh, and the old one expires in its own time, 90 days) on the datasources
    that hold the old one: only where it still is, as another process may have stored
    its own replacement first, which is as good."""
    candidates = Datasource.objects.filter(
        kind="smtp",
        config__auth=Auth.OAUTH2,
        config__client_id=s.client_id,
        config__username=s.username,
    )
    with transaction.atomic():
        for datasource in candidates.select_for_update():
            stored = OAuth2Secret.parse(datasource.secret)
            if stored.refresh_token == s.refresh_token:
                datasource.secret = OAuth2Secret(stored.client_secret, refresh_token).dump()
                datasource.save(update_fields=["secret", "updated_at"])


def provider_said(*parts: object) -> str:
    """What a provider said (an error code, its description), as one tidy line cut to
    ``SAID_LIMIT``: it is shown on a page and in run errors, and the provider's text is
    neither short nor one line for certain."""
    said = ": ".join(" ".join(str(part).split()) for part in parts if str(part or "").strip())
    return said[:SAID_LIMIT]


def forget(s: SmtpSettings) -> None:
    """Drop ``s``'s cached access token (the server refused it)."""
    cache.delete(_cache_key(s))


def _cache_key(s: SmtpSettings) -> str:
    # A hash: the cache (Redis, in production) never holds the refresh token.
    digest = hashlib.sha256(f"{s.client_id}\x00{s.refresh_token}".encode()).hexdigest()
    return f"smtp-oauth2-token:{digest}"


def _seconds(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


# ---------------------------------------------------------------- the connect flow


@dataclass(frozen=True)
class Authorization:
    """One authorization request: where to send the browser, and what the callback
    needs to check its answer (kept in the session, never shown)."""

    url: str
    state: str
    verifier: str


def authorization(
    provider: str, tenant: str, client_id: str, username: str, redirect_uri: str
) -> Authorization:
    """The provider's sign-in page for the authorization code flow with PKCE (S256,
    RFC 7636): Google is asked for offline access and a fresh consent, or it gives no
    refresh token to an app it already knows."""
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    query = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": SCOPES[provider],
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "login_hint": username,
    }
    if provider == OAuth2Provider.GOOGLE:
        query.update(access_type="offline", prompt="consent")
    else:
        query["response_mode"] = "query"
    url = f"{_endpoint(provider, tenant, 'AUTHORIZE')}?{urlencode(query)}"
    return Authorization(url=url, state=state, verifier=verifier)


def exchange_code(s: SmtpSettings, code: str, verifier: str, redirect_uri: str) -> str:
    """The refresh token for an authorization ``code``."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
        "client_id": s.client_id,
    }
    answer = _token_request(s.oauth_provider, s.oauth_tenant, form, s.client_secret, grant="code")
    refresh = answer.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        raise _unusable(s.oauth_provider, "no refresh token (was offline access refused?)")
    return refresh


# ---------------------------------------------------------------- the token endpoint


def _token_request(
    provider: str, tenant: str, form: dict, client_secret: str, *, grant: str = "refresh_token"
) -> dict:
    """POST ``form`` to the provider's token endpoint; its JSON answer, or an error
    that names the field to fix (``grant`` says whether a refresh token or a code was
    given). Microsoft wants the scope with every grant; Google takes the granted one."""
    label = OAuth2Provider.label(provider)
    if client_secret:
        form = {**form, "client_secret": client_secret}
    if provider == OAuth2Provider.MICROSOFT:
        form = {**form, "scope": SCOPES[provider]}
    timeout = django_settings.KILN_OAUTH2_TIMEOUT
    try:
        response = httpx.post(
            token_url(provider, tenant),
            data=form,
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
    except httpx.TimeoutException:
        raise TransientError(
            f"{label}'s token endpoint did not answer within {timeout:g} s.", code="oauth2"
        ) from None
    except httpx.HTTPError as exc:
        raise TransientError(
            f"Could not reach {label}'s token endpoint ({type(exc).__name__}).", code="oauth2"
        ) from None
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(
            f"{label}'s token endpoint failed ({response.status_code}); trying again later.",
            code="oauth2",
        )
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise _unusable(provider, f"an answer that is not JSON ({response.status_code})")
    if response.status_code == 200 and "error" not in answer:
        return answer
    raise _refusal(label, answer, grant)


def _refusal(label: str, answer: dict, grant: str) -> PluginError:
    error = str(answer.get("error") or "error")
    said = provider_said(error, answer.get("error_description"))
    if error == "invalid_grant" and grant == "code":
        return PluginError(
            f"{label} refused the authorization ({said}). Connect again.",
            field="refresh_token",
            code="oauth2",
        )
    if error == "invalid_grant":
        return PluginError(
            f"Refresh token refused by {label} ({said}): it expired or was revoked. "
            "Connect the account again, or paste a new refresh token.",
            field="refresh_token",
            code="oauth2",
        )
    if error in ("invalid_client", "unauthorized_client"):
        return PluginError(
            f"Client secret or client ID refused by {label} ({said}). Copy both again "
            "from the app registered with the provider.",
            field="client_secret",
            code="oauth2",
        )
    return PluginError(
        f"{label}'s token endpoint refused the request ({said}).",
        field="client_id",
        code="oauth2",
    )


def _unusable(provider: str, what: str) -> PluginError:
    label = OAuth2Provider.label(provider)
    return PluginError(
        f"{label}'s token endpoint answered with {what}; check the token URL settings.",
        field="refresh_token",
        code="oauth2",
    )
