"""A datasource's TLS trust binds its saved password: an editor who swaps the CA
certificate or the pinned fingerprint for theirs (to lure the password to a server of
theirs) must type the password again; the saved one is never sent."""

from __future__ import annotations

import pytest

from tests.integration.test_datasource_views import PASSWORD, form_data, url
from tests.support.apps import password_mailer
from tests.support.certs import make_certificates

PIN = ":".join(["AB"] * 32)


@pytest.fixture
def ds(team, certs):
    return password_mailer(
        team.workspace,
        PASSWORD,
        host="localhost",
        ca_certificate=certs.ca_file.read_text(),
        certificate_fingerprint=PIN,
    )


def _edit(ds, certs, **overrides) -> dict:
    values = {
        "host": "localhost",
        "password": "",
        "ca_certificate": certs.ca_file.read_text(),
        "certificate_fingerprint": PIN,
    }
    return form_data(**{**values, **overrides})


@pytest.fixture
def rogue_ca(tmp_path) -> str:
    return make_certificates(tmp_path / "rogue").ca_file.read_text()


@pytest.mark.parametrize(
    "change",
    [
        {"certificate_fingerprint": "CD" * 32},
        {"certificate_fingerprint": ""},
        {"ca_certificate": "rogue"},
        {"ca_certificate": ""},
    ],
)
def test_changing_the_trust_needs_the_password_again(
    client, team, ds, certs, rogue_ca, smtp_factory, change
):
    if change.get("ca_certificate") == "rogue":
        change = {"ca_certificate": rogue_ca}
    rogue = smtp_factory(security="starttls", users={"mailer": "anything"})
    client.force_login(team.teammate)
    data = _edit(ds, certs, port=str(rogue.port), **change)
    ds.config = {**ds.config, "port": rogue.port}
    ds.save()

    response = client.post(url("test_saved", team, ds.pk), data)
    assert 'data-ok="false"' in response.text and "type it again" in response.text
    assert rogue.auth_attempts == []

    response = client.post(url("edit", team, ds.pk), data)
    assert response.status_code == 422 and "TLS trust" in response.text
    ds.refresh_from_db()
    assert ds.config["certificate_fingerprint"] == PIN and ds.secret == PASSWORD

    response = client.post(url("edit", team, ds.pk), {**data, "password": "typed-again"})
    assert response.status_code == 302
    ds.refresh_from_db()
    assert ds.secret == "typed-again"


def test_the_same_trust_as_a_browser_sends_it_keeps_the_password(client, team, ds, certs):
    # A textarea comes back with CRLF line ends, the fingerprint as typed: the same trust.
    pem = certs.ca_file.read_text().replace("\n", "\r\n")
    data = _edit(ds, certs, ca_certificate=pem, certificate_fingerprint=PIN.replace(":", ""))
    client.force_login(team.teammate)
    response = client.post(url("edit", team, ds.pk), data)
    assert response.status_code == 302
    ds.refresh_from_db()
    assert ds.secret == PASSWORD and ds.config["certificate_fingerprint"] == PIN
