"""SMTP datasource settings: the typed object, and the form that edits it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from django import forms
from django.conf import settings as django_settings
from django.urls import reverse

from datasources.errors import FieldError
from datasources.plugins.base import ConfigForm
from datasources.plugins.smtp.guard import check_host_syntax, check_port
from datasources.plugins.smtp.sandbox import Sandbox, check_address, check_dev_mailbox
from datasources.plugins.smtp.trust import clean_ca_certificate, clean_fingerprint


class Security:
    STARTTLS = "starttls"
    SSL = "ssl"
    NONE = "none"
    CHOICES = [
        (STARTTLS, "STARTTLS (usually port 587)"),
        (SSL, "SSL/TLS (usually port 465)"),
        (NONE, "None (unencrypted; usually port 25)"),
    ]
    #: The port a datasource saved without one uses, as mail clients and Appsmith do.
    DEFAULT_PORTS = {STARTTLS: 587, SSL: 465, NONE: 25}

    @classmethod
    def default_port(cls, security: str) -> int:
        return cls.DEFAULT_PORTS.get(security, 587)


class Auth:
    PASSWORD = "password"
    OAUTH2 = "oauth2"
    NONE = "none"
    CHOICES = [
        (PASSWORD, "Username and password"),
        (OAUTH2, "OAuth2 (Gmail, Microsoft 365)"),
        (NONE, "No authentication"),
    ]
    #: The choices that sign in as ``username``.
    SIGNED_IN = (PASSWORD, OAUTH2)


class OAuth2Provider:
    GOOGLE = "google"
    MICROSOFT = "microsoft"
    CHOICES = [(GOOGLE, "Google (Gmail, Google Workspace)"), (MICROSOFT, "Microsoft 365")]
    #: As the "Connect with …" button says it.
    NAMES = {GOOGLE: "Google", MICROSOFT: "Microsoft"}
    #: Each provider's SMTP host, on port 587 with STARTTLS: what the datasource page
    #: fills in when OAuth2 is chosen with the host still empty.
    HOSTS = {GOOGLE: "smtp.gmail.com", MICROSOFT: "smtp.office365.com"}

    @classmethod
    def label(cls, provider: str) -> str:
        """The provider's name in messages; an unknown one as it is stored."""
        return cls.NAMES.get(provider, provider)

    #: Work and school accounts of any tenant: what Microsoft 365 mailboxes are. A
    #: tenant id or domain narrows it; "common" also lets personal accounts in.
    DEFAULT_TENANT = "organizations"


#: An OAuth2 datasource saved without a refresh token: what its page and the list say.
NOT_CONNECTED = "Not connected yet: connect or paste a refresh token."


@dataclass(frozen=True)
class OAuth2Secret:
    """What an OAuth2 datasource keeps encrypted, as one JSON object in the
    datasource's single secret (a password datasource keeps the password itself)."""

    client_secret: str = ""
    refresh_token: str = ""

    def __repr__(self) -> str:
        return "OAuth2Secret(…)"

    @classmethod
    def parse(cls, secret: str) -> OAuth2Secret:
        """The stored secret; empty when it is not one of these (a saved password)."""
        try:
            value = json.loads(secret or "")
        except ValueError:
            return cls()
        if not isinstance(value, dict):
            return cls()
        return cls(str(value.get("client_secret") or ""), str(value.get("refresh_token") or ""))

    def dump(self) -> str:
        return json.dumps(
            {"client_secret": self.client_secret, "refresh_token": self.refresh_token}
        )


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str = Security.STARTTLS
    auth: str = Auth.PASSWORD
    username: str = ""
    password: str = ""
    timeout: float = 30.0
    verify_certificate: bool = True
    #: Sandbox mode (datasources/plugins/smtp/sandbox.py): off, devmailbox or catchall.
    sandbox: str = Sandbox.OFF
    sandbox_address: str = ""
    #: TLS trust (datasources/plugins/smtp/trust.py): PEM certificates trusted besides
    #: the system's, and the SHA-256 fingerprint the server's certificate must have.
    ca_certificate: str = ""
    certificate_fingerprint: str = ""
    #: OAuth2 (``auth == Auth.OAUTH2``): ``username`` is the mailbox; the client secret
    #: and the refresh token come from the encrypted secret.
    oauth_provider: str = ""
    oauth_tenant: str = ""
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""

    def __repr__(self) -> str:
        # Never let the password reach a log line or a traceback through repr().
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, security={self.security!r},"
            f" auth={self.auth!r}, username={self.username!r}, timeout={self.timeout})"
        )

    @classmethod
    def from_stored(cls, config: dict, secret: str) -> SmtpSettings:
        security = config.get("security", Security.STARTTLS)
        auth = config.get("auth", Auth.PASSWORD)
        oauth = OAuth2Secret.parse(secret) if auth == Auth.OAUTH2 else OAuth2Secret()
        return cls(
            host=config.get("host", ""),
            port=int(config.get("port") or Security.default_port(security)),
            security=security,
            auth=auth,
            username=config.get("username", ""),
            password="" if auth == Auth.OAUTH2 else secret or "",
            timeout=float(config.get("timeout", django_settings.KILN_SMTP_DEFAULT_TIMEOUT)),
            verify_certificate=bool(config.get("verify_certificate", True)),
            # Settings saved before sandbox mode existed have neither key: off.
            sandbox=config.get("sandbox") or Sandbox.OFF,
            sandbox_address=config.get("sandbox_address") or "",
            ca_certificate=config.get("ca_certificate") or "",
            certificate_fingerprint=config.get("certificate_fingerprint") or "",
            oauth_provider=config.get("oauth_provider") or "",
            oauth_tenant=config.get("oauth_tenant") or "",
            client_id=config.get("client_id") or "",
            client_secret=oauth.client_secret,
            refresh_token=oauth.refresh_token,
        )


def oauth2_redirect_uri() -> str:
    """Where a provider sends the browser back after "Connect" (register it with the
    app): the callback's address under KILN_PUBLIC_URL."""
    return django_settings.KILN_PUBLIC_URL + reverse("oauth2_callback")


#: The settings an OAuth2 datasource keeps in its encrypted secret.
OAUTH2_SECRETS = ("client_secret", "refresh_token")
#: A Microsoft tenant as it goes into the token URL's path: a name, an id or a domain.
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,99}")


def _secret_field(
    label: str, max_length: int, help_text: str, autocomplete: str = "off"
) -> forms.CharField:
    """A secret's field: optional (blank keeps the saved one), taken as typed, and never
    rendered back into the page."""
    return forms.CharField(
        label=label,
        max_length=max_length,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": autocomplete}),
        help_text=help_text,
    )


class SmtpConfigForm(ConfigForm):
    """Edits the settings of an SMTP datasource.

    The password is never rendered back: on an existing datasource a blank password
    keeps the stored one (``stored_secret``).
    """

    host = forms.CharField(
        label="Host address",
        max_length=253,
        help_text="The SMTP server's host name, e.g. smtp.example.com",
    )
    port = forms.IntegerField(
        label="Port",
        min_value=1,
        max_value=65535,
        required=False,
        help_text="Leave empty for the usual port of the connection security: "
        "587 for STARTTLS, 465 for SSL/TLS, 25 for none.",
    )
    security = forms.ChoiceField(
        label="Connection security", choices=Security.CHOICES, initial=Security.STARTTLS
    )
    auth = forms.ChoiceField(
        label="Authentication",
        choices=Auth.CHOICES,
        initial=Auth.PASSWORD,
        widget=forms.RadioSelect,
    )
    username = forms.CharField(label="Username", max_length=255, required=False)
    password = _secret_field(
        "Password",
        1024,
        "With multi-factor authentication, use an app password from your provider.",
        autocomplete="new-password",
    )
    timeout = forms.IntegerField(label="Timeout (seconds)", min_value=1, max_value=300, initial=30)
    verify_certificate = forms.BooleanField(
        label="Verify the server's TLS certificate", required=False, initial=True
    )
    sandbox = forms.ChoiceField(
        label="Sandbox mode",
        choices=Sandbox.CHOICES,
        initial=Sandbox.OFF,
        required=False,
        widget=forms.RadioSelect,
        help_text="To try an app with real data: every email is built and checked as "
        "usual, then kept or redirected instead of going to its recipients (they are "
        "listed in an X-Kiln-Sandbox-Original-Recipients header and in the run).",
    )
    sandbox_address = forms.CharField(
        label="Catch-all address",
        max_length=254,
        required=False,
        help_text="In catch-all mode, the only address that receives the emails, "
        "through this server.",
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )

    # TLS trust, shown under "Advanced: TLS trust" (datasources/plugins/smtp/trust.py).
    ca_certificate = forms.CharField(
        label="CA certificate (PEM)",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 4, "spellcheck": "false", "placeholder": "-----BEGIN CERTIFICATE-----"}
        ),
        help_text="For a server whose certificate comes from a private authority: that "
        "authority's certificate, trusted for this datasource only, besides the "
        "authorities the system trusts.",
    )
    certificate_fingerprint = forms.CharField(
        label="Pinned fingerprint (SHA-256)",
        max_length=200,
        required=False,
        help_text="The SHA-256 fingerprint of the server's own certificate; the connection "
        "stops before the password is sent if the server shows another. With "
        "verification off, the pin alone vouches for a self-signed server.",
    )
    TRUST_FIELDS = ("ca_certificate", "certificate_fingerprint")

    # OAuth2 (Auth.OAUTH2): the mailbox is ``username``; datasources/plugins/smtp/oauth.py
    # turns the refresh token into access tokens.
    oauth_provider = forms.ChoiceField(
        label="Provider",
        choices=OAuth2Provider.CHOICES,
        initial=OAuth2Provider.GOOGLE,
        required=False,
        widget=forms.RadioSelect,
    )
    oauth_tenant = forms.CharField(
        label="Microsoft tenant",
        max_length=100,
        required=False,
        initial=OAuth2Provider.DEFAULT_TENANT,
        help_text="“organizations” for any work or school account; your tenant's id or "
        "domain to allow only it; “common” to allow personal Outlook.com accounts too.",
    )
    client_id = forms.CharField(label="Client ID", max_length=255, required=False)
    client_secret = _secret_field(
        "Client secret",
        512,
        "From the app registered with the provider (blank for a Microsoft public client).",
    )
    refresh_token = _secret_field(
        "Refresh token", 4096, "Set by “Connect”, or pasted from your own authorization."
    )

    #: The saved password goes only to the server it was saved for: change any of these,
    #: or turn certificate verification off, and it must be typed again (else an editor
    #: could send it to a server of theirs, or trust a certificate of theirs).
    SECRET_BOUND_TO = ("host", "port", "security", "username", *TRUST_FIELDS)
    #: The OAuth2 secrets are bound to the server too (the access token they yield opens
    #: the whole mailbox), and to the app and account they were issued for.
    OAUTH2_BOUND_TO = ("oauth_provider", "oauth_tenant", "client_id")

    def __init__(self, *args, stored_secret: str = "", **kwargs):
        super().__init__(*args, stored_secret=stored_secret, **kwargs)
        self.stored_config = dict(self.initial or {})
        stored_oauth2 = self.stored_config.get("auth") == Auth.OAUTH2
        #: The saved password: none when the saved secret is an OAuth2 one.
        self.stored_password = "" if stored_oauth2 else stored_secret
        self.stored_oauth2 = OAuth2Secret.parse(stored_secret) if stored_oauth2 else OAuth2Secret()
        if self.stored_password:
            self.fields["password"].help_text = "Leave blank to keep the saved password."
        for name in OAUTH2_SECRETS:
            if getattr(self.stored_oauth2, name):
                label = str(self.fields[name].label).lower()
                self.fields[name].help_text = f"Leave blank to keep the saved {label}."

    def clean_host(self) -> str:
        host = self.cleaned_data["host"].strip()
        try:
            check_host_syntax(host)
        except FieldError as exc:
            raise forms.ValidationError(exc.message) from None
        return host

    def clean_ca_certificate(self) -> str:
        return self._field_value(clean_ca_certificate, self.cleaned_data["ca_certificate"])

    def clean_certificate_fingerprint(self) -> str:
        return self._field_value(clean_fingerprint, self.cleaned_data["certificate_fingerprint"])

    @staticmethod
    def _field_value(check, value):
        try:
            return check(value)
        except FieldError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean(self) -> dict:
        data = super().clean() or {}
        self._clean_port(data)
        self._clean_trust(data)
        for name in ("username", "password", *self.OAUTH2_BOUND_TO, *OAUTH2_SECRETS):
            value = data.get(name) or ""
            if any(ch in value for ch in "\r\n\x00"):
                label = self.fields[name].label
                self.add_error(name, f"{label} must not contain line breaks or NUL characters.")
        self._clean_sandbox(data)
        self._clean_oauth2(data)
        if data.get("auth") == Auth.PASSWORD:
            if not data.get("username"):
                self.add_error("username", "Username is required (or choose “No authentication”).")
            if not data.get("password") and self.stored_password and not self._same_server(data):
                self.add_error(
                    "password",
                    "Password: type it again — the host, port, security, username or "
                    "TLS trust (CA certificate, pinned fingerprint) changed, or "
                    "certificate verification was turned off, and the saved password is "
                    "only sent to the server it was saved for.",
                )
            elif not (data.get("password") or self.stored_password):
                self.add_error("password", "Password is required (or choose “No authentication”).")
        return data

    def _clean_port(self, data: dict) -> None:
        """An empty port is the usual one of the connection security (so that it follows
        the security chosen, in the form as in an app file), then checked like a typed
        one against the ports this server allows."""
        if "port" in self.errors:
            return
        if data.get("port") is None:
            if "security" not in data:
                return  # The security's own error says what to fix first.
            data["port"] = Security.default_port(data["security"])
        try:
            check_port(data["port"], data.get("host", ""))
        except FieldError as exc:
            self.add_error("port", exc.message)

    def _clean_trust(self, data: dict) -> None:
        if data.get("security") != Security.NONE:
            return
        for name in self.TRUST_FIELDS:
            if data.get(name):
                label = self.fields[name].label
                self.add_error(
                    name,
                    f"{label}: only used over TLS; choose STARTTLS or SSL/TLS as the "
                    "connection security, or leave it empty.",
                )

    def _clean_sandbox(self, data: dict) -> None:
        mode = data.get("sandbox") or Sandbox.OFF
        data["sandbox"] = mode
        try:
            if mode == Sandbox.CATCH_ALL:
                address = (data.get("sandbox_address") or "").strip()
                if not address:
                    self.add_error(
                        "sandbox_address", "Catch-all address is required in catch-all mode."
                    )
                    return
                data["sandbox_address"] = check_address(address)
            elif mode == Sandbox.DEV_MAILBOX:
                check_dev_mailbox()
        except FieldError as exc:
            self.add_error(exc.field or "sandbox_address", exc.message)

    def _clean_oauth2(self, data: dict) -> None:
        """Provider, tenant, mailbox and client id are required with OAuth2; the client
        secret and the refresh token may be left blank to keep the saved ones, on the
        same server, provider, tenant, client id and mailbox only. The refresh token
        may be missing altogether: "Connect" sets it once the settings are saved."""
        if data.get("auth") != Auth.OAUTH2:
            return
        provider = data.get("oauth_provider") or ""
        if provider not in dict(OAuth2Provider.CHOICES):
            self.add_error("oauth_provider", "Provider is required with OAuth2.")
        if provider == OAuth2Provider.MICROSOFT:
            tenant = (data.get("oauth_tenant") or "").strip() or OAuth2Provider.DEFAULT_TENANT
            if not _TENANT.fullmatch(tenant):
                self.add_error(
                    "oauth_tenant",
                    "Microsoft tenant must be “organizations”, “common”, a tenant id or a "
                    "domain (letters, digits, dots and hyphens).",
                )
            data["oauth_tenant"] = tenant
        else:
            data["oauth_tenant"] = ""
        data["client_id"] = (data.get("client_id") or "").strip()
        username = data.get("username") or ""
        if not username:
            self.add_error("username", "Username is required with OAuth2: the mailbox address.")
        elif not username.isascii():
            # XOAUTH2 carries it as ASCII (smtplib encodes the string so).
            self.add_error(
                "username",
                "Username must be written in ASCII with OAuth2 (an international domain as xn--…).",
            )
        if not data["client_id"]:
            self.add_error("client_id", "Client ID is required with OAuth2.")
        same = self._same_server(data, also=self.OAUTH2_BOUND_TO)
        for name in OAUTH2_SECRETS:
            if not data.get(name) and getattr(self.stored_oauth2, name) and not same:
                label = self.fields[name].label
                self.add_error(
                    name,
                    f"{label}: type it again (or connect again) — the server, its TLS "
                    "trust, provider, tenant, client ID or username changed, or certificate "
                    "verification "
                    "was turned off, and the saved one only goes where it was saved for.",
                )

    @property
    def oauth2_hosts(self) -> str:
        """Each provider's SMTP host as JSON, for the page's script to fill in."""
        return json.dumps(OAuth2Provider.HOSTS)

    @property
    def oauth2_connect(self) -> dict:
        """What the page offers to get a refresh token: ``provider``, the saved
        provider's name when the saved settings are OAuth2 with a client ID ("" before);
        ``public``, whether browsers reach this deployment at KILN_PUBLIC_URL (else a
        refresh token is pasted); ``redirect_uri``, to register with the app."""
        saved = self.stored_config
        provider = ""
        if saved.get("auth") == Auth.OAUTH2 and saved.get("client_id"):
            provider = OAuth2Provider.NAMES.get(saved.get("oauth_provider", ""), "")
        public = bool(django_settings.KILN_PUBLIC_URL)
        redirect_uri = oauth2_redirect_uri() if public else ""
        return {"provider": provider, "public": public, "redirect_uri": redirect_uri}

    def _same_server(self, data: dict, also: tuple[str, ...] = ()) -> bool:
        # Verification off lets anyone on the path pose as the server: like a new host,
        # the saved password is not lent to it. Turning verification on needs nothing.
        verified = self.stored_config.get("verify_certificate", True)
        if verified and not data.get("verify_certificate"):
            return False
        return all(
            str(data.get(name) or "") == str(self.stored_config.get(name) or "")
            for name in (*self.SECRET_BOUND_TO, *also)
        )

    def stored(self) -> tuple[dict, str]:
        """The non-secret config and the secret, to save on the datasource."""
        data = self.cleaned_data
        config = {
            "host": data["host"],
            "port": data["port"],
            "security": data["security"],
            "auth": data["auth"],
            "username": data["username"] if data["auth"] in Auth.SIGNED_IN else "",
            "timeout": data["timeout"],
            "verify_certificate": data["verify_certificate"],
        }
        # Only when given, as the sandbox keys below.
        config.update({name: data[name] for name in self.TRUST_FIELDS if data.get(name)})
        # Only when on: settings without sandbox keys are the same as before it existed.
        if data["sandbox"] != Sandbox.OFF:
            config["sandbox"] = data["sandbox"]
        if data["sandbox"] == Sandbox.CATCH_ALL:
            config["sandbox_address"] = data["sandbox_address"]
        if data["auth"] == Auth.NONE:
            return config, ""
        if data["auth"] == Auth.OAUTH2:
            return self._stored_oauth2(config)
        return config, data["password"] or self.stored_password

    def _stored_oauth2(self, config: dict) -> tuple[dict, str]:
        data = self.cleaned_data
        config.update({name: data[name] for name in self.OAUTH2_BOUND_TO if data[name]})
        secret = OAuth2Secret(
            client_secret=data["client_secret"] or self.stored_oauth2.client_secret,
            refresh_token=data["refresh_token"] or self.stored_oauth2.refresh_token,
        )
        return config, secret.dump()

    def settings(self) -> SmtpSettings:
        config, secret = self.stored()
        return SmtpSettings.from_stored(config, secret)
