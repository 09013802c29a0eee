"""The OAuth2 endpoint settings are refused by ``manage.py check`` unless https (http to
a loopback host only): the client secret and the refresh token are sent to them."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks

from datasources.checks import oauth2_url_problems

NAME = "KILN_OAUTH2_GOOGLE_TOKEN_URL"


@pytest.mark.parametrize(
    "url",
    [
        "https://oauth2.googleapis.com/token",
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "http://127.0.0.1:8765/token",
        "http://localhost:8765/token",
        "http://[::1]:8765/token",
    ],
)
def test_https_and_loopback_http_pass(url):
    assert oauth2_url_problems({NAME: url}) == []


@pytest.mark.parametrize(
    "url",
    ["http://oauth2.example.com/token", "http://10.0.0.5/token", "ftp://x/token", "", None],
)
def test_anything_else_is_an_error_naming_the_setting(url):
    errors = oauth2_url_problems({NAME: url})
    assert [e.id for e in errors] == ["datasources.E001"]
    assert errors[0].msg.startswith(f"{NAME} must be an https URL")


def test_the_check_is_registered(settings):
    settings.KILN_OAUTH2_MICROSOFT_TOKEN_URL = "http://login.example.com/token"
    errors = [e for e in run_checks() if e.id == "datasources.E001"]
    assert len(errors) == 1 and "KILN_OAUTH2_MICROSOFT_TOKEN_URL" in errors[0].msg
