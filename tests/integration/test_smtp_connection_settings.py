"""The SMTP datasource's connection settings on the datasource page and in app files: the
port's default, and the TLS trust section (a CA certificate, a pinned fingerprint)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from builder.document import AppFileError, import_app
from datasources.models import Datasource
from datasources.plugins.smtp.config import Security, SmtpSettings
from datasources.plugins.smtp.trust import MAX_CA_BYTES
from tests.integration.test_app_files import PASSWORD_ENV, app, document  # noqa: F401
from tests.integration.test_datasource_views import PASSWORD, form_data, url

PIN = ":".join(["AB"] * 32)


def _create(client, team, **overrides):
    client.force_login(team.owner)
    return client.post(url("create", team, "smtp"), form_data(**overrides))


@pytest.mark.parametrize(
    ("security", "port"), [(Security.STARTTLS, 587), (Security.SSL, 465), (Security.NONE, 25)]
)
def test_an_empty_port_is_the_usual_one_of_the_security(client, team, security, port):
    response = _create(client, team, port="", security=security, auth="none")
    assert response.status_code == 302
    stored = Datasource.objects.get(workspace=team.workspace)
    assert stored.config["port"] == port and stored.settings().port == port


@pytest.mark.parametrize(
    ("security", "port"), [(Security.STARTTLS, 587), (Security.SSL, 465), (Security.NONE, 25)]
)
def test_settings_stored_without_a_port_follow_the_security(security, port):
    assert SmtpSettings.from_stored({"host": "h", "security": security}, "").port == port


def test_a_typed_port_is_kept_and_still_checked(client, team, settings):
    assert _create(client, team, port="2525", auth="none").status_code == 302
    settings.KILN_SMTP_PORTS = ["587"]
    response = _create(client, team, name="Other", port="", security="ssl", auth="none")
    assert response.status_code == 422
    assert 'id="id_port_errors"' in response.text and "Port 465 is not" in response.text


def test_an_app_file_without_a_port_gets_the_security_default(team, document):  # noqa: F811
    config = document["datasources"][0]["config"]
    del config["port"]
    config["security"] = "ssl"
    import_app(document, team.other_workspace, environ=PASSWORD_ENV)
    assert Datasource.objects.get(workspace=team.other_workspace).config["port"] == 465


def test_an_app_file_names_a_bad_ca_certificate(team, document):  # noqa: F811
    document["datasources"][0]["config"]["ca_certificate"] = "not a certificate"
    with pytest.raises(AppFileError, match="ca_certificate"):
        import_app(document, team.other_workspace, environ=PASSWORD_ENV)


def test_the_trust_settings_are_stored_in_canonical_form(client, team, certs):
    pem = certs.ca_file.read_text().replace("\n", "\r\n")
    typed = "SHA256 Fingerprint=" + PIN.lower().replace(":", "")
    response = _create(
        client, team, port="", ca_certificate=f"our CA:\r\n{pem}", certificate_fingerprint=typed
    )
    assert response.status_code == 302
    config = Datasource.objects.get(workspace=team.workspace).config
    assert config["ca_certificate"] == certs.ca_file.read_text()
    assert config["certificate_fingerprint"] == PIN


def test_settings_without_trust_store_no_trust_keys(client, team):
    assert _create(client, team).status_code == 302
    config = Datasource.objects.get(workspace=team.workspace).config
    assert "ca_certificate" not in config and "certificate_fingerprint" not in config


def _private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ca_certificate", "hello", "not a PEM certificate"),
        (
            "ca_certificate",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "not a PEM certificate",
        ),
        ("ca_certificate", "x" * (MAX_CA_BYTES + 1), "at most 64 KB"),
        ("certificate_fingerprint", "AB:CD", "64 hexadecimal digits"),
        ("certificate_fingerprint", "zz" * 32, "64 hexadecimal digits"),
    ],
)
def test_bad_trust_settings_name_the_field(client, team, field, value, message):
    response = _create(client, team, **{field: value})
    assert response.status_code == 422
    assert f'id="id_{field}_errors"' in response.text and message in response.text
    assert not Datasource.objects.exists()


def test_a_private_key_is_refused_and_not_stored(client, team, certs):
    pem = certs.ca_file.read_text() + _private_key_pem()
    response = _create(client, team, ca_certificate=pem)
    assert response.status_code == 422
    assert "holds a private key" in response.text
    assert not Datasource.objects.exists()


def test_trust_settings_need_tls(client, team):
    response = _create(client, team, security="none", auth="none", certificate_fingerprint=PIN)
    assert response.status_code == 422
    assert 'id="id_certificate_fingerprint_errors"' in response.text
    assert "only used over TLS" in response.text


def test_test_connection_uses_the_trust_settings(client, team, smtp_factory, certs):
    server = smtp_factory(security="ssl", users={"mailer": PASSWORD})
    client.force_login(team.owner)
    data = form_data(host="localhost", port=str(server.port), security="ssl")
    response = client.post(url("test", team), data)
    assert 'data-ok="false"' in response.text and "not trusted" in response.text
    data["ca_certificate"] = certs.ca_file.read_text()
    response = client.post(url("test", team), data)
    assert 'data-ok="true"' in response.text, response.text


def test_the_page_shows_the_trust_section(client, team):
    client.force_login(team.owner)
    response = client.get(url("create", team, "smtp"))
    assert "Advanced: TLS trust" in response.text
    assert 'name="ca_certificate"' in response.text
    assert 'name="certificate_fingerprint"' in response.text
