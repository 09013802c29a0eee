"""The SMTP password never leaves the database in clear: not in pages, htmx fragments,
JSON, log records, exception messages or the database column itself."""

from __future__ import annotations

import base64
import json
import logging
import traceback

import pytest
from django.db import connection
from django.urls import reverse

from datasources.errors import PluginError
from datasources.models import Datasource
from datasources.plugins import get_plugin

PASSWORD = "Zebra-Kiln-7731-Secret"


def leaks(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    forms = {
        PASSWORD,
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(f"\0mailer\0{PASSWORD}".encode()).decode(),
    }
    return [form for form in forms if form in text]


@pytest.fixture
def server(smtp_factory):
    return smtp_factory(security="starttls", users={"mailer": PASSWORD})


@pytest.fixture
def saved(team, client, server, trust_test_ca):
    client.force_login(team.owner)
    data = {
        "name": "Mailer",
        "kind": "smtp",
        "host": "localhost",
        "port": str(server.port),
        "security": "starttls",
        "auth": "password",
        "username": "mailer",
        "password": PASSWORD,
        "timeout": "5",
        "verify_certificate": "on",
    }
    response = client.post(reverse("datasources:create", args=[team.workspace.slug, "smtp"]), data)
    assert response.status_code == 302
    return Datasource.objects.get(name="Mailer"), data


def test_the_column_holds_ciphertext(saved):
    datasource, _ = saved
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret, config FROM datasources_datasource WHERE id = %s", [datasource.pk]
        )
        secret, config = cursor.fetchone()
    assert leaks(secret) == [] and leaks(config) == []
    assert datasource.secret == PASSWORD


def test_no_page_or_fragment_shows_it(saved, team, client, caplog):
    datasource, data = saved
    slug = team.workspace.slug
    caplog.set_level(logging.DEBUG)
    responses = [
        client.get(reverse("datasources:list", args=[slug])),
        client.get(reverse("datasources:edit", args=[slug, datasource.pk])),
        client.get(reverse("datasources:delete", args=[slug, datasource.pk])),
        client.post(
            reverse("datasources:test_saved", args=[slug, datasource.pk]),
            {**data, "password": ""},
            HTTP_HX_REQUEST="true",
        ),
        client.post(reverse("datasources:test", args=[slug]), data, HTTP_HX_REQUEST="true"),
        client.post(
            reverse("datasources:test", args=[slug]),
            {**data, "username": "someone-else"},
            HTTP_HX_REQUEST="true",
        ),
        client.post(
            reverse("datasources:edit", args=[slug, datasource.pk]), {**data, "port": "not-a-port"}
        ),
        client.get(reverse("healthz")),
    ]
    assert 'data-ok="true"' in responses[3].text
    assert "Authentication refused" in responses[5].text
    for response in responses:
        assert leaks(response.content) == [], response.request["PATH_INFO"]
    for record in caplog.records:
        assert leaks(record.getMessage()) == [], record.getMessage()


def test_errors_and_reprs_do_not_hold_it(saved, server, caplog):
    datasource, _ = saved
    caplog.set_level(logging.DEBUG)
    settings = datasource.settings()
    assert leaks(repr(settings)) == [] and leaks(repr(datasource)) == []
    wrong = type(settings)(**{**settings.__dict__, "username": "nobody"})
    with pytest.raises(PluginError) as caught:
        get_plugin("smtp").execute(wrong, "send_email", {"from": "a@kiln.test", "to": "b@x.test"})
    assert "Authentication refused" in caught.value.message
    assert leaks(str(caught.value)) == [] and leaks(json.dumps(caught.value.as_dict())) == []
    assert leaks("".join(traceback.format_exception(caught.value, chain=True))) == []
    for record in caplog.records:
        assert leaks(record.getMessage()) == []
