"""Secrets: turning certificate verification off needs the password typed again; the
field encryption key rotates; a datasource that queries use is not deleted, and the
message names them."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.db import connection
from django.urls import reverse
from encrypted_model_fields import fields as encrypted

from builder.models import App, Query
from datasources.models import Datasource
from kiln.envconf import envlist
from tests.integration.test_datasource_views import PASSWORD, form_data
from tests.support.apps import password_mailer


@pytest.fixture
def ds(team):
    return password_mailer(team.workspace, PASSWORD)


def url(name, team, *args):
    return reverse(f"datasources:{name}", args=[team.workspace.slug, *args])


def test_turning_verification_off_needs_the_password_again(client, team, ds):
    client.force_login(team.teammate)
    data = form_data(port="587", password="")
    data.pop("verify_certificate")

    # Same host, port, security and username: only verification changed.
    response = client.post(url("test_saved", team, ds.pk), data)
    assert 'data-ok="false"' in response.text and "type it again" in response.text

    response = client.post(url("edit", team, ds.pk), data)
    assert response.status_code == 422 and "certificate verification" in response.text
    ds.refresh_from_db()
    assert ds.config["verify_certificate"] is True and ds.secret == PASSWORD

    response = client.post(url("edit", team, ds.pk), {**data, "password": "typed-again"})
    assert response.status_code == 302
    ds.refresh_from_db()
    assert ds.config["verify_certificate"] is False and ds.secret == "typed-again"


def test_turning_verification_on_keeps_the_saved_password(client, team, ds):
    ds.config = {**ds.config, "verify_certificate": False}
    ds.save()
    client.force_login(team.teammate)
    response = client.post(url("edit", team, ds.pk), form_data(port="587", password=""))
    assert response.status_code == 302
    ds.refresh_from_db()
    assert ds.config["verify_certificate"] is True and ds.secret == PASSWORD


@pytest.fixture
def keys(settings, monkeypatch):
    """Sets FIELD_ENCRYPTION_KEY as a deployment would, rebuilding the package's crypter."""

    def use(*values: str) -> None:
        settings.FIELD_ENCRYPTION_KEY = list(values)
        monkeypatch.setattr(encrypted, "CRYPTER", encrypted.get_crypter())

    return use


def _column(ds) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM datasources_datasource WHERE id = %s", [ds.pk])
        return cursor.fetchone()[0]


def test_a_secret_saved_with_the_old_key_decrypts_after_rotation(client, team, keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys(old)
    client.force_login(team.owner)
    assert client.post(url("create", team, "smtp"), form_data()).status_code == 302
    ds = Datasource.objects.get(name="Mailer")
    saved_with_old = _column(ds)

    keys(new, old)
    assert Datasource.objects.get(pk=ds.pk).secret == PASSWORD

    # A re-save (password left blank: kept) encrypts with the newest key.
    response = client.post(url("edit", team, ds.pk), form_data(password=""))
    assert response.status_code == 302
    resaved = _column(ds)
    assert resaved != saved_with_old
    assert Fernet(new.encode()).decrypt(resaved.encode()).decode() == PASSWORD
    with pytest.raises(InvalidToken):
        Fernet(old.encode()).decrypt(resaved.encode())

    keys(new)
    assert Datasource.objects.get(pk=ds.pk).secret == PASSWORD


def test_settings_read_a_comma_separated_key_list(monkeypatch):
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", "new-key,old-key")
    assert envlist("FIELD_ENCRYPTION_KEY") == ["new-key", "old-key"]


def test_deleting_a_datasource_in_use_names_the_queries(client, team, ds):
    app = App.objects.create(workspace=team.workspace, name="Contact")
    Query.objects.create(app=app, name="send_welcome", datasource=ds, fields={})
    Query.objects.create(app=app, name="send_reminder", datasource=ds, fields={})
    client.force_login(team.teammate)

    response = client.post(url("delete", team, ds.pk), follow=True)

    assert response.status_code == 200
    assert "used by 2 queries" in response.text
    assert "send_welcome" in response.text and "send_reminder" in response.text
    assert Datasource.objects.filter(pk=ds.pk).exists()
    assert Query.objects.filter(datasource=ds).count() == 2
