"""Headers: a strict Content-Security-Policy on every page, HSTS and the https settings
from the environment, secure cookies by default, and run-on-page-load only by a POST
with the CSRF token."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.integration.test_public_apps import PAGE
from tests.integration.test_public_apps import app as public_app  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parts = [part.strip().split() for part in policy.split(";") if part.strip()]
    return {part[0]: part[1:] for part in parts}


@pytest.mark.parametrize("url", ["/accounts/login/", "/", PAGE, "/healthz"])
def test_every_page_has_a_strict_policy(client, team, public_app, url):  # noqa: F811
    client.force_login(team.viewer)
    policy = directives(client.get(url))
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'self'"]
    assert not any(
        "'unsafe-inline'" in values or "'unsafe-eval'" in values for values in policy.values()
    )


def test_htmx_is_told_not_to_inject_its_indicator_style(client):
    page = client.get("/accounts/login/").text
    assert '<meta name="htmx-config"' in page and '"includeIndicatorStyles": false' in page
    assert (ROOT / "static/css/kiln.css").read_text().count(".htmx-indicator") >= 2


def test_hsts_is_sent_on_https(client, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    response = client.get("/accounts/login/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"
    assert "Strict-Transport-Security" not in client.get("/accounts/login/")


def test_ssl_redirect_spares_the_health_check(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/accounts/login/")
    assert response.status_code == 301 and response["Location"].startswith("https://")
    assert client.get("/healthz").status_code == 200


def settings_with(**env) -> dict:
    """Kiln's settings as a fresh process reads them from ``env``."""
    code = (
        "import json, kiln.settings as s; print(json.dumps({'cookies': s.SESSION_COOKIE_SECURE,"
        " 'csrf': s.CSRF_COOKIE_SECURE, 'hsts': s.SECURE_HSTS_SECONDS,"
        " 'proxy': s.SECURE_PROXY_SSL_HEADER, 'redirect': s.SECURE_SSL_REDIRECT}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DEBUG"))}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    return json.loads(out.stdout)


def test_cookies_are_secure_by_default_unless_debug():
    assert settings_with() == {
        "cookies": True,
        "csrf": True,
        "hsts": 31536000,
        "proxy": None,
        "redirect": False,
    }
    debug = settings_with(DEBUG="true")
    assert debug["cookies"] is False and debug["hsts"] == 0
    assert settings_with(SECURE_COOKIES="false")["cookies"] is False


def test_the_https_settings_come_from_the_environment():
    found = settings_with(
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="60",
    )
    assert found["proxy"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert found["redirect"] is True and found["hsts"] == 60


def test_the_tests_run_over_plain_http(settings):
    # tests/conftest.py sets SECURE_COOKIES=false, as scripts/run.sh does.
    assert settings.SESSION_COOKIE_SECURE is False


def test_run_on_page_load_needs_a_post_with_the_csrf_token(team, public_app):  # noqa: F811
    query = public_app.queries.get(name="ping")
    query.run_on_page_load = True
    query.save()
    from builder.publishing import publish
    from queries.models import QueryRun

    publish(public_app, team.owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(team.viewer)
    page = client.get(PAGE)
    assert not QueryRun.objects.exists()
    assert client.get(f"{PAGE}load").status_code == 405
    assert client.post(f"{PAGE}load").status_code == 403
    token = page.cookies["csrftoken"].value
    started = client.post(f"{PAGE}load", headers={"X-CSRFToken": token})
    assert started.status_code == 200 and QueryRun.objects.count() == 1


def test_no_template_needs_eval():
    # An htmx trigger filter ("keyup[...]"), hx-vals="js:..." or hx-vars run through
    # eval, which script-src 'self' refuses: the browser would drop them silently.
    found = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for pattern in ('hx-trigger="[^"]*\\[', "js:", "javascript:", "hx-vars"):
            if re.search(pattern, text):
                found.append(f"{path.relative_to(ROOT)}: {pattern}")
    assert found == []
