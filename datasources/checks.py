"""System checks for the datasources' deployment settings: the OAuth2 endpoints
(``KILN_OAUTH2_*_URL``) must be https, since the client secret, the refresh token and
the authorization code travel to them. Plain http is allowed for a loopback host only,
where the tests' and a developer's local token server live."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register

OAUTH2_URLS = (
    "KILN_OAUTH2_GOOGLE_TOKEN_URL",
    "KILN_OAUTH2_GOOGLE_AUTHORIZE_URL",
    "KILN_OAUTH2_MICROSOFT_TOKEN_URL",
    "KILN_OAUTH2_MICROSOFT_AUTHORIZE_URL",
)


def oauth2_url_problems(urls: dict[str, object]) -> list[Error]:
    """One Error per endpoint setting that is not an https URL (or http to loopback)."""
    errors = []
    for name, url in urls.items():
        parts = urlsplit(str(url or ""))
        if parts.scheme == "https" and parts.hostname:
            continue
        if parts.scheme == "http" and _loopback(parts.hostname):
            continue
        errors.append(
            Error(
                f"{name} must be an https URL (it is {url!r}): the client secret and the "
                "refresh token are sent to it. Plain http is allowed for localhost only.",
                id="datasources.E001",
            )
        )
    return errors


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@register()
def check_oauth2_urls(app_configs, **kwargs) -> list[Error]:
    return oauth2_url_problems({name: getattr(settings, name, "") for name in OAUTH2_URLS})
