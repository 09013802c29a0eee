"""An SMTP datasource with OAuth2 in the datasource pages: its secrets stored encrypted
and never shown, bound to where they were saved for, and "Connect with Google /
Microsoft" (authorization code with PKCE) against a local token endpoint."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.urls import reverse

from builder.document import AppFileError, import_app
from builder.models import datasource_document
from datasources.models import Datasource
from tests.support.oauth2 import TokenEndpoint
from workspaces.audit import AuditEvent

CLIENT_SECRET = "GOCSPX-client-secret-value"
REFRESH_TOKEN = "1//0pasted-refresh-token"
PUBLIC_URL = "https://kiln.example.test"
AUTHORIZE_URL = "https://accounts.example.test/o/oauth2/v2/auth"


def form_data(**overrides):
    data = {
        "name": "Gmail",
        "kind": "smtp",
        "host": "smtp.gmail.com",
        "port": "587",
        "security": "starttls",
        "auth": "oauth2",
        "username": "mailbox@example.com",
        "oauth_provider": "google",
        "oauth_tenant": "organizations",
        "client_id": "client-id.apps.example",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "timeout": "10",
        "verify_certificate": "on",
    }
    data.update(overrides)
    return data


def url(name, workspace, *args):
    return reverse(f"datasources:{name}", args=[workspace.slug, *args])


@pytest.fixture
def saved(client, team):
    client.force_login(team.teammate)
    response = client.post(url("create", team.workspace, "smtp"), form_data())
    assert response.status_code == 302, response.content.decode()
    return Datasource.objects.get(workspace=team.workspace)


@pytest.fixture
def endpoint(settings):
    started = TokenEndpoint().start()
    settings.KILN_PUBLIC_URL = PUBLIC_URL
    settings.KILN_OAUTH2_GOOGLE_AUTHORIZE_URL = AUTHORIZE_URL
    settings.KILN_OAUTH2_GOOGLE_TOKEN_URL = f"{started.url}/token"
    yield started
    started.stop()


def test_the_secrets_are_stored_encrypted_and_never_shown(client, saved):
    settings = saved.settings()
    assert (settings.client_secret, settings.refresh_token) == (CLIENT_SECRET, REFRESH_TOKEN)
    assert "client_secret" not in saved.config and "refresh_token" not in saved.config
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM datasources_datasource WHERE id = %s", [saved.pk])
        raw = cursor.fetchone()[0]
    assert CLIENT_SECRET not in raw and REFRESH_TOKEN not in raw
    page = client.get(url("edit", saved.workspace, saved.pk)).content.decode()
    assert CLIENT_SECRET not in page and REFRESH_TOKEN not in page
    assert "Leave blank to keep the saved refresh token." in page
    assert CLIENT_SECRET not in repr(settings) and REFRESH_TOKEN not in repr(settings)


def test_blank_secrets_keep_the_saved_ones(client, saved):
    data = form_data(client_secret="", refresh_token="", timeout="20")
    response = client.post(url("edit", saved.workspace, saved.pk), data)
    assert response.status_code == 302
    saved.refresh_from_db()
    assert saved.config["timeout"] == 20
    assert saved.settings().refresh_token == REFRESH_TOKEN
    assert saved.settings().client_secret == CLIENT_SECRET


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "another-client"},
        {"username": "other@example.com"},
        {"host": "smtp.example.net"},
        {"oauth_provider": "microsoft"},
        {"verify_certificate": ""},
    ],
)
def test_saved_secrets_are_not_lent_to_other_settings(client, saved, change):
    data = form_data(client_secret="", refresh_token="", **change)
    response = client.post(url("edit", saved.workspace, saved.pk), data)
    assert response.status_code == 422
    errors = response.context["config_form"].errors
    assert "Client secret: type it again" in errors["client_secret"][0]
    assert "Refresh token: type it again" in errors["refresh_token"][0]
    saved.refresh_from_db()
    assert saved.settings().refresh_token == REFRESH_TOKEN


def test_a_saved_password_is_not_an_oauth2_secret_and_back(client, team):
    client.force_login(team.teammate)
    password = form_data(auth="password", password="Sup3r-Secret-Pw!", host="127.0.0.1")
    client.post(url("create", team.workspace, "smtp"), password)
    saved = Datasource.objects.get(workspace=team.workspace)
    to_oauth2 = form_data(host="127.0.0.1", client_secret="", refresh_token="")
    response = client.post(url("edit", team.workspace, saved.pk), to_oauth2)
    assert response.status_code == 302
    saved.refresh_from_db()
    assert saved.settings().client_secret == "" and saved.settings().password == ""
    back = form_data(auth="password", host="127.0.0.1", password="")
    response = client.post(url("edit", team.workspace, saved.pk), back)
    assert response.status_code == 422
    assert "Password is required" in response.context["config_form"].errors["password"][0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"client_id": ""}, "client_id"),
        ({"username": ""}, "username"),
        ({"username": "josé@exämple.com"}, "username"),
        ({"oauth_provider": "microsoft", "oauth_tenant": "../evil?x="}, "oauth_tenant"),
        ({"refresh_token": "a\r\nb"}, "refresh_token"),
    ],
)
def test_bad_oauth2_settings_are_errors_naming_the_field(client, team, change, field):
    client.force_login(team.teammate)
    response = client.post(url("create", team.workspace, "smtp"), form_data(**change))
    assert response.status_code == 422
    assert field in response.context["config_form"].errors
    assert not Datasource.objects.exists()


def test_without_a_public_url_the_page_says_to_paste_a_refresh_token(client, saved, settings):
    settings.KILN_PUBLIC_URL = ""
    page = client.get(url("edit", saved.workspace, saved.pk)).content.decode()
    assert "Paste a refresh token" in page
    assert "OAuth2 (Gmail and Microsoft 365)" in page
    assert "Connect with Google" not in page
    response = client.post(url("oauth2_start", saved.workspace, saved.pk))
    assert response.status_code == 404


def start(client, saved) -> dict[str, str]:
    response = client.post(url("oauth2_start", saved.workspace, saved.pk))
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(AUTHORIZE_URL + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class _Forms(HTMLParser):
    """Each form's id or action, whether it opened inside another, and what submits it."""

    def __init__(self):
        super().__init__()
        self.open: list[str] = []
        self.nested: list[str] = []
        self.fields: dict[str, list[str]] = {}
        self.connect: dict[str, str | None] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            name = attrs.get("id") or attrs.get("action") or ""
            if self.open:
                self.nested.append(name)
            self.open.append(name)
            self.fields[name] = []
        elif tag in ("input", "select", "textarea") and self.open and attrs.get("name"):
            self.fields[self.open[-1]].append(attrs["name"])
        if attrs.get("id") == "oauth2-connect-button":
            self.connect = {**attrs, "inside": self.open[-1] if self.open else ""}

    def handle_endtag(self, tag):
        if tag == "form" and self.open:
            self.open.pop()


def test_connect_posts_a_form_of_its_own_not_the_unsaved_settings(client, saved, endpoint):
    """The button used to submit the settings form to a view that ignores it, dropping
    unsaved edits: it now submits its own form, outside the settings form, and a static
    script stops it (with a "save first") when the settings were changed."""
    edit = url("edit", saved.workspace, saved.pk)
    forms = _Forms()
    forms.feed(client.get(edit).content.decode())
    assert forms.nested == []
    assert forms.connect["form"] == "oauth2-connect-form" and "formaction" not in forms.connect
    assert forms.connect["inside"] == edit and "data-unsaved" not in forms.connect
    assert forms.fields["oauth2-connect-form"] == ["csrfmiddlewaretoken"]
    page = client.get(edit).content.decode()
    assert 'action="{}"'.format(url("oauth2_start", saved.workspace, saved.pk)) in page
    assert "js/datasource-connect.js" in page and "Save your changes first" in page
    refused = client.post(edit, form_data(port="not-a-port"))
    forms = _Forms()
    forms.feed(refused.content.decode())
    assert "data-unsaved" in forms.connect  # the page shows what no save kept


def test_connect_redirects_to_the_provider_with_a_pkce_challenge(client, saved, endpoint):
    page = client.get(url("edit", saved.workspace, saved.pk)).content.decode()
    assert "Connect with Google" in page
    assert f"{PUBLIC_URL}/oauth2/callback/" in page
    query = start(client, saved)
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert query["redirect_uri"] == f"{PUBLIC_URL}/oauth2/callback/"
    assert query["client_id"] == "client-id.apps.example"
    assert query["scope"] == "https://mail.google.com/"
    assert (query["access_type"], query["prompt"]) == ("offline", "consent")
    assert query["login_hint"] == "mailbox@example.com"
    assert query["state"]


def test_a_callback_with_the_wrong_state_is_a_400_and_saves_nothing(client, saved, endpoint):
    query = start(client, saved)
    endpoint.expect_code("the-code", query["code_challenge"])
    response = client.get(reverse("oauth2_callback"), {"state": "forged", "code": "the-code"})
    assert response.status_code == 400
    assert b"state" in response.content
    assert endpoint.calls == []
    saved.refresh_from_db()
    assert saved.settings().refresh_token == REFRESH_TOKEN


def test_a_callback_with_the_right_state_saves_the_refresh_token_encrypted(client, saved, endpoint):
    query = start(client, saved)
    endpoint.expect_code("the-code", query["code_challenge"])
    answer = {"state": query["state"], "code": "the-code"}
    response = client.get(reverse("oauth2_callback"), answer, follow=True)
    assert response.redirect_chain[-1][0] == url("edit", saved.workspace, saved.pk)
    assert "Connected mailbox@example.com with Google" in response.content.decode()
    _, form = endpoint.calls[0]
    assert form["grant_type"] == "authorization_code"
    assert form["redirect_uri"] == f"{PUBLIC_URL}/oauth2/callback/"
    assert form["client_secret"] == CLIENT_SECRET
    saved.refresh_from_db()
    assert saved.settings().refresh_token == endpoint.refresh_token
    assert saved.settings().client_secret == CLIENT_SECRET
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM datasources_datasource WHERE id = %s", [saved.pk])
        assert endpoint.refresh_token not in cursor.fetchone()[0]
    assert endpoint.refresh_token not in response.content.decode()
    event = AuditEvent.objects.get(detail__oauth2="connected")
    assert event.target_label == saved.name
    # A state is used once.
    again = client.get(reverse("oauth2_callback"), answer)
    assert again.status_code == 400


def test_a_replayed_callback_is_a_400_and_exchanges_nothing(client, saved, endpoint):
    query = start(client, saved)
    endpoint.expect_code("the-code", query["code_challenge"])
    answer = {"state": query["state"], "code": "the-code"}
    assert client.get(reverse("oauth2_callback"), answer).status_code == 302
    calls = len(endpoint.calls)
    again = client.get(reverse("oauth2_callback"), answer)
    assert again.status_code == 400 and b"already used" in again.content
    assert len(endpoint.calls) == calls


def test_a_callback_after_the_settings_changed_saves_nothing(client, saved, endpoint):
    """The code was granted for the client ID of the start; another is saved now."""
    query = start(client, saved)
    endpoint.expect_code("the-code", query["code_challenge"])
    saved.config = {**saved.config, "client_id": "another-client.apps.example"}
    saved.save(update_fields=["config"])
    answer = {"state": query["state"], "code": "the-code"}
    response = client.get(reverse("oauth2_callback"), answer, follow=True)
    assert "OAuth2 settings changed meanwhile; nothing was saved" in response.content.decode()
    assert endpoint.calls == []
    saved.refresh_from_db()
    assert saved.settings().refresh_token == REFRESH_TOKEN


def test_a_callback_whose_token_endpoint_times_out_says_so(
    client, saved, endpoint, silent_server, settings
):
    query = start(client, saved)
    settings.KILN_OAUTH2_GOOGLE_TOKEN_URL = f"http://127.0.0.1:{silent_server.port}/token"
    settings.KILN_OAUTH2_TIMEOUT = 0.2
    answer = {"state": query["state"], "code": "the-code"}
    response = client.get(reverse("oauth2_callback"), answer, follow=True)
    said = "Connect: Google&#x27;s token endpoint did not answer within 0.2 s."
    assert said in response.content.decode()
    saved.refresh_from_db()
    assert saved.settings().refresh_token == REFRESH_TOKEN


def test_a_refused_code_keeps_the_saved_token_and_says_why(client, saved, endpoint):
    query = start(client, saved)
    answer = {"state": query["state"], "code": "not-the-code"}
    response = client.get(reverse("oauth2_callback"), answer, follow=True)
    assert "Google refused the authorization (invalid_grant: Bad code.)" in (
        response.content.decode()
    )
    saved.refresh_from_db()
    assert saved.settings().refresh_token == REFRESH_TOKEN


def test_a_denied_consent_says_so(client, saved, endpoint):
    query = start(client, saved)
    answer = {"state": query["state"], "error": "access_denied"}
    response = client.get(reverse("oauth2_callback"), answer, follow=True)
    assert "Google did not authorize Kiln (access_denied)." in response.content.decode()
    assert endpoint.calls == []


def test_another_workspaces_datasource_is_a_404(client, saved, team, endpoint):
    client.force_login(team.outsider)
    response = client.post(url("oauth2_start", team.workspace, saved.pk))
    assert response.status_code == 404
    response = client.post(url("oauth2_start", team.other_workspace, saved.pk))
    assert response.status_code == 404


def test_a_viewer_cannot_connect(client, saved, team, endpoint):
    client.force_login(team.viewer)
    response = client.post(url("oauth2_start", team.workspace, saved.pk))
    assert response.status_code == 403


def test_connect_needs_a_post(client, saved, endpoint):
    response = client.get(url("oauth2_start", saved.workspace, saved.pk))
    assert response.status_code == 405


def app_file(**secrets) -> dict:
    config = {
        "host": "smtp.gmail.com",
        "port": 587,
        "auth": "oauth2",
        "username": "mailbox@example.com",
        "oauth_provider": "google",
        "client_id": "client-id.apps.example",
    }
    source = {"name": "Gmail", "kind": "smtp", "config": config, **secrets}
    return {
        "kiln": "app",
        "version": 1,
        "app": {"name": "Mailer"},
        "pages": [{"name": "Home"}],
        "datasources": [source],
    }


def test_app_files_take_the_oauth2_secrets_from_the_environment_only(team):
    sources = {"client_secret": {"env": "CS"}, "refresh_token": {"env": "RT"}}
    environ = {"CS": CLIENT_SECRET, "RT": REFRESH_TOKEN}
    import_app(app_file(**sources), team.workspace, environ=environ)
    imported = Datasource.objects.get(workspace=team.workspace)
    assert imported.settings().refresh_token == REFRESH_TOKEN
    exported = json.dumps(datasource_document(imported).model_dump())
    assert CLIENT_SECRET not in exported and REFRESH_TOKEN not in exported
    written = app_file()
    written["datasources"][0]["config"]["refresh_token"] = REFRESH_TOKEN
    with pytest.raises(AppFileError) as caught:
        import_app(written, team.other_workspace, environ={})
    assert "refresh_token" in str(caught.value)


@pytest.mark.django_db
def test_saved_without_a_refresh_token_warns_on_its_page_and_in_the_list(client, team):
    client.force_login(team.teammate)
    response = client.post(
        url("create", team.workspace, "smtp"), form_data(refresh_token=""), follow=True
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="setup-warning"' in page
    assert "Not connected yet: connect or paste a refresh token." in page
    listed = client.get(url("list", team.workspace)).content.decode()
    assert "Not connected" in listed
    # With a refresh token, neither says it.
    Datasource.objects.all().delete()
    response = client.post(url("create", team.workspace, "smtp"), form_data(), follow=True)
    assert "Not connected" not in response.content.decode()
    assert "Not connected" not in client.get(url("list", team.workspace)).content.decode()


@pytest.mark.django_db
def test_the_form_gives_its_script_the_providers_hosts(client, team, settings):
    client.force_login(team.teammate)
    page = client.get(url("create", team.workspace, "smtp")).content.decode()
    assert "js/datasource-oauth2-host.js" in page
    hosts = json.loads(_attribute(page, "oauth2-settings", "data-hosts"))
    assert hosts == {"google": "smtp.gmail.com", "microsoft": "smtp.office365.com"}
    assert "section “OAuth2 (Gmail and Microsoft 365)”, “Getting the refresh token”" in page
    # The page names the sections as the guide titles them.
    guide = (settings.BASE_DIR / "docs" / "smtp.md").read_text()
    assert "\n## OAuth2 (Gmail and Microsoft 365)\n" in guide
    assert "\n### Getting the refresh token\n" in guide


def _attribute(page: str, element_id: str, name: str) -> str:
    """The value of ``name`` on the element with ``element_id``, unescaped."""
    found: dict[str, str] = {}

    class Finder(HTMLParser):
        def handle_starttag(self, tag, attrs):
            values = dict(attrs)
            if values.get("id") == element_id:
                found["value"] = values.get(name) or ""

    Finder().feed(page)
    return found["value"]
