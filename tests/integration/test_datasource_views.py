"""The datasource pages: create, edit, delete, test connection, access."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from datasources.models import Datasource
from tests.support.apps import password_mailer

PASSWORD = "Sup3r-Secret-Pw!"


def form_data(**overrides):
    data = {
        "name": "Mailer",
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": "587",
        "security": "starttls",
        "auth": "password",
        "username": "mailer",
        "password": PASSWORD,
        "timeout": "10",
        "verify_certificate": "on",
    }
    data.update(overrides)
    return data


@pytest.fixture
def ds(team):
    return password_mailer(team.workspace, PASSWORD)


def url(name, team, *args):
    return reverse(f"datasources:{name}", args=[team.workspace.slug, *args])


def test_an_editor_creates_a_datasource(client, team):
    client.force_login(team.teammate)
    response = client.post(url("create", team, "smtp"), form_data())
    created = Datasource.objects.get(workspace=team.workspace)
    assert response.status_code == 302
    assert created.config["host"] == "127.0.0.1"
    assert created.secret == PASSWORD
    assert created.settings().password == PASSWORD


def test_the_list_shows_datasources(client, team, ds):
    client.force_login(team.owner)
    response = client.get(url("list", team))
    assert response.status_code == 200
    assert "Mailer" in response.text and "127.0.0.1:587" in response.text


def test_username_and_password_are_required_unless_no_auth(client, team):
    client.force_login(team.owner)
    response = client.post(url("create", team, "smtp"), form_data(username="", password=""))
    assert response.status_code == 422
    assert "Username is required" in response.text
    assert "Password is required" in response.text
    assert not Datasource.objects.exists()

    response = client.post(
        url("create", team, "smtp"), form_data(auth="none", username="", password="")
    )
    assert response.status_code == 302
    assert Datasource.objects.get().secret == ""


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("port", "70000", "Ensure this value is less than or equal to 65535"),
        ("host", "http://smtp.example.com", "is not a valid host name"),
        ("host", "169.254.169.254", "is a cloud metadata service"),
        ("host", "metadata.google.internal", "is a cloud metadata service"),
        ("host", "[::ffff:169.254.169.254]", "cloud metadata service"),
        ("host", "0x7f000001", "is not a valid address"),
        ("host", "127.1", "is not a valid address"),
        ("host", "0.0.0.0", "is an unspecified address"),
        ("username", "a\r\nb", "must not contain line breaks"),
    ],
)
def test_bad_input_names_the_field_and_keeps_what_was_stored(
    client, team, ds, field, value, message
):
    client.force_login(team.owner)
    response = client.post(url("edit", team, ds.pk), form_data(**{field: value}))
    assert response.status_code == 422
    assert message in response.text
    assert f'id="id_{field}_errors"' in response.text
    ds.refresh_from_db()
    assert ds.config["host"] == "127.0.0.1" and ds.config["port"] == 587
    assert ds.secret == PASSWORD


def test_ports_outside_the_allowed_list_are_refused(client, team, settings):
    settings.KILN_SMTP_PORTS = ["25", "465", "587"]
    client.force_login(team.owner)
    response = client.post(url("create", team, "smtp"), form_data(port="6379"))
    assert response.status_code == 422
    assert "Port 6379 is not an SMTP port this server allows" in response.text


def test_private_and_loopback_hosts_can_be_refused_by_setting(client, team, settings):
    settings.KILN_SMTP_ALLOW_LOOPBACK = False
    settings.KILN_SMTP_ALLOW_PRIVATE = False
    client.force_login(team.owner)
    response = client.post(url("create", team, "smtp"), form_data(host="127.0.0.1"))
    assert "is a loopback address, refused" in response.text
    response = client.post(url("create", team, "smtp"), form_data(host="10.1.2.3"))
    assert "is a private address, refused" in response.text


def test_the_password_is_never_rendered_and_blank_keeps_it(client, team, ds):
    client.force_login(team.owner)
    page = client.get(url("edit", team, ds.pk))
    assert PASSWORD not in page.text
    assert "Leave blank to keep the saved password" in page.text
    response = client.post(url("edit", team, ds.pk), form_data(password="", name="Renamed"))
    assert response.status_code == 302
    ds.refresh_from_db()
    assert (ds.name, ds.secret) == ("Renamed", PASSWORD)


def test_duplicate_names_are_refused(client, team, ds):
    client.force_login(team.owner)
    response = client.post(url("create", team, "smtp"), form_data())
    assert response.status_code == 422
    assert "A datasource named “Mailer” already exists here." in response.text


def test_delete_asks_then_deletes(client, team, ds):
    client.force_login(team.owner)
    assert "Delete “Mailer”?" in client.get(url("delete", team, ds.pk)).text
    client.post(url("delete", team, ds.pk))
    assert not Datasource.objects.exists()


def test_another_workspace_gets_404(client, team, ds):
    client.force_login(team.outsider)
    assert client.get(url("list", team)).status_code == 404
    assert client.get(url("edit", team, ds.pk)).status_code == 404
    assert client.post(url("delete", team, ds.pk)).status_code == 404
    assert client.post(url("test_saved", team, ds.pk), form_data()).status_code == 404
    other_url = reverse("datasources:edit", args=[team.other_workspace.slug, ds.pk])
    assert client.get(other_url).status_code == 404
    assert Datasource.objects.filter(pk=ds.pk).exists()


def test_a_viewer_cannot_reach_datasources(client, team, ds):
    client.force_login(team.viewer)
    assert client.get(url("list", team)).status_code == 403
    assert client.post(url("edit", team, ds.pk), form_data(name="x")).status_code == 403
    assert client.post(url("delete", team, ds.pk)).status_code == 403
    ds.refresh_from_db()
    assert ds.name == "Mailer"


def test_anonymous_users_are_sent_to_sign_in(client, team):
    response = client.get(url("list", team))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_test_connection_reports_success(client, team, smtp_server):
    client.force_login(team.owner)
    data = form_data(port=str(smtp_server.port), security="none", auth="none")
    response = client.post(url("test", team), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'data-ok="true"' in response.text
    assert f"Connected to 127.0.0.1:{smtp_server.port} successfully." in response.text
    assert "<html" not in response.text


def test_test_connection_uses_the_saved_password(client, team, ds, smtp_factory, trust_test_ca):
    server = smtp_factory(security="starttls", users={"mailer": PASSWORD})
    ds.config = {**ds.config, "host": "localhost", "port": server.port}
    ds.save()
    client.force_login(team.owner)
    data = form_data(host="localhost", port=str(server.port), password="")
    response = client.post(url("test_saved", team, ds.pk), data)
    assert 'data-ok="true"' in response.text, response.text


def test_test_connection_reports_bad_settings_by_field(client, team):
    client.force_login(team.owner)
    response = client.post(url("test", team), form_data(port="abc", username=""))
    assert 'data-ok="false"' in response.text
    assert "Port: Enter a whole number." in response.text
    assert "Username is required" in response.text


def test_test_connection_names_each_field_once(client, team):
    """An error that names its field by the label's short form ("CA certificate: ..."
    under "CA certificate (PEM)") is not prefixed with the label a second time."""
    client.force_login(team.owner)
    data = form_data(ca_certificate="garbage", certificate_fingerprint="12:34", timeout="0")
    response = client.post(url("test", team), data)
    text = response.text
    assert 'data-ok="false"' in text
    assert "CA certificate: not a PEM certificate." in text
    assert "Pinned fingerprint: expected the SHA-256 fingerprint" in text
    assert "CA certificate (PEM):" not in text
    assert "Pinned fingerprint (SHA-256):" not in text
    assert text.count("CA certificate:") == 1
    # An error that does not name its field still gets the label, in full.
    assert "Timeout (seconds): Ensure this value is greater than or equal to 1." in text


def test_the_tls_settings_are_grouped_to_hide_with_security_none(client, team):
    """With security None, certificate checks and TLS trust do not apply: the form groups
    them in .tls-only, which datasources-smtp.css hides then (unless a field there has an
    error), as it hides the fields of the other authentication modes."""
    client.force_login(team.owner)
    response = client.get(url("create", team, "smtp"))
    html = response.text
    start = html.index('<div class="tls-only">')
    end = html.index("</details>", start)
    assert 'name="verify_certificate"' in html[start:end]
    assert 'name="ca_certificate"' in html[start:end]
    assert 'name="certificate_fingerprint"' in html[start:end]
    with open(finders.find("css/datasources-smtp.css"), encoding="utf-8") as css_file:
        css = css_file.read()
    assert "option[value=none]:checked) .tls-only:not(:has(.has-error))" in css


def test_the_saved_password_is_not_sent_to_another_server(client, team, ds, smtp_factory):
    # An editor points the datasource at a server of theirs and leaves the password blank.
    rogue = smtp_factory(users={"mailer": "anything"})
    client.force_login(team.teammate)
    data = form_data(host="127.0.0.1", port=str(rogue.port), security="none", password="")
    response = client.post(url("test_saved", team, ds.pk), data)
    assert 'data-ok="false"' in response.text
    assert "type it again" in response.text
    assert rogue.auth_attempts == []
    response = client.post(url("edit", team, ds.pk), data)
    assert response.status_code == 422
    ds.refresh_from_db()
    assert ds.config["security"] == "starttls" and ds.secret == PASSWORD
