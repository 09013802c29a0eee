"""SMTP datasource settings: the typed object, and the form that edits it."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings as django_settings

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
    NONE = "none"
    CHOICES = [
        (PASSWORD, "Username and password"),
        (NONE, "No authentication"),
    ]


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

    def __repr__(self) -> str:
        # Never let the password reach a log line or a traceback through repr().
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, security={self.security!r},"
            f" auth={self.auth!r}, username={self.username!r}, timeout={self.timeout})"
        )

    @classmethod
    def from_stored(cls, config: dict, secret: str) -> SmtpSettings:
        security = config.get("security", Security.STARTTLS)
        return cls(
            host=config.get("host", ""),
            port=int(config.get("port") or Security.default_port(security)),
            security=security,
            auth=config.get("auth", Auth.PASSWORD),
            username=config.get("username", ""),
            password=secret or "",
            timeout=float(config.get("timeout", django_settings.KILN_SMTP_DEFAULT_TIMEOUT)),
            verify_certificate=bool(config.get("verify_certificate", True)),
            # Settings saved before sandbox mode existed have neither key: off.
            sandbox=config.get("sandbox") or Sandbox.OFF,
            sandbox_address=config.get("sandbox_address") or "",
            ca_certificate=config.get("ca_certificate") or "",
            certificate_fingerprint=config.get("certificate_fingerprint") or "",
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
    password = forms.CharField(
        label="Password",
        max_length=1024,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="With multi-factor authentication, use an app password from your provider.",
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

    #: The saved password goes only to the server it was saved for: change any of these,
    #: or turn certificate verification off, and it must be typed again (else an editor
    #: could send it to a server of theirs, or trust a certificate of theirs).
    SECRET_BOUND_TO = ("host", "port", "security", "username", *TRUST_FIELDS)

    def __init__(self, *args, stored_secret: str = "", **kwargs):
        super().__init__(*args, stored_secret=stored_secret, **kwargs)
        self.stored_config = dict(self.initial or {})
        if stored_secret:
            self.fields["password"].help_text = "Leave blank to keep the saved password."

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
        for name in ("username", "password"):
            value = data.get(name) or ""
            if any(ch in value for ch in "\r\n\x00"):
                label = self.fields[name].label
                self.add_error(name, f"{label} must not contain line breaks or NUL characters.")
        self._clean_sandbox(data)
        if data.get("auth") == Auth.PASSWORD:
            if not data.get("username"):
                self.add_error("username", "Username is required (or choose “No authentication”).")
            if not data.get("password") and self.stored_secret and not self._same_server(data):
                self.add_error(
                    "password",
                    "Password: type it again — the host, port, security, username or "
                    "TLS trust (CA certificate, pinned fingerprint) changed, or "
                    "certificate verification was turned off, and the saved password is "
                    "only sent to the server it was saved for.",
                )
            elif not (data.get("password") or self.stored_secret):
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

    def _same_server(self, data: dict) -> bool:
        # Verification off lets anyone on the path pose as the server: like a new host,
        # the saved password is not lent to it. Turning verification on needs nothing.
        verified = self.stored_config.get("verify_certificate", True)
        if verified and not data.get("verify_certificate"):
            return False
        return all(
            str(data.get(name) or "") == str(self.stored_config.get(name) or "")
            for name in self.SECRET_BOUND_TO
        )

    def stored(self) -> tuple[dict, str]:
        """The non-secret config and the secret, to save on the datasource."""
        data = self.cleaned_data
        config = {
            "host": data["host"],
            "port": data["port"],
            "security": data["security"],
            "auth": data["auth"],
            "username": data["username"] if data["auth"] == Auth.PASSWORD else "",
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
        return config, data["password"] or self.stored_secret

    def settings(self) -> SmtpSettings:
        config, secret = self.stored()
        return SmtpSettings.from_stored(config, secret)
