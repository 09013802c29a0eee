"""SMTP datasource settings: the typed object, and the form that edits it."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings as django_settings

from datasources.errors import FieldError
from datasources.plugins.base import ConfigForm
from datasources.plugins.smtp.guard import check_host_syntax, check_port
from datasources.plugins.smtp.sandbox import Sandbox, check_address, check_dev_mailbox


class Security:
    STARTTLS = "starttls"
    SSL = "ssl"
    NONE = "none"
    CHOICES = [
        (STARTTLS, "STARTTLS (usually port 587)"),
        (SSL, "SSL/TLS (usually port 465)"),
        (NONE, "None (unencrypted; usually port 25)"),
    ]


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

    def __repr__(self) -> str:
        # Never let the password reach a log line or a traceback through repr().
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, security={self.security!r},"
            f" auth={self.auth!r}, username={self.username!r}, timeout={self.timeout})"
        )

    @classmethod
    def from_stored(cls, config: dict, secret: str) -> SmtpSettings:
        return cls(
            host=config.get("host", ""),
            port=int(config.get("port", 587)),
            security=config.get("security", Security.STARTTLS),
            auth=config.get("auth", Auth.PASSWORD),
            username=config.get("username", ""),
            password=secret or "",
            timeout=float(config.get("timeout", django_settings.KILN_SMTP_DEFAULT_TIMEOUT)),
            verify_certificate=bool(config.get("verify_certificate", True)),
            # Settings saved before sandbox mode existed have neither key: off.
            sandbox=config.get("sandbox") or Sandbox.OFF,
            sandbox_address=config.get("sandbox_address") or "",
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
    port = forms.IntegerField(label="Port", min_value=1, max_value=65535, initial=587)
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

    #: The saved password goes only to the server it was saved for: change any of these,
    #: or turn certificate verification off, and it must be typed again (else an editor
    #: could send it to a server of theirs).
    SECRET_BOUND_TO = ("host", "port", "security", "username")

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

    def clean_port(self) -> int:
        port = self.cleaned_data["port"]
        try:
            check_port(port, self.cleaned_data.get("host", ""))
        except FieldError as exc:
            raise forms.ValidationError(exc.message) from None
        return port

    def clean(self) -> dict:
        data = super().clean() or {}
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
                    "Password: type it again — the host, port, security or username "
                    "changed, or certificate verification was turned off, and the saved "
                    "password is only sent to the server it was saved for.",
                )
            elif not (data.get("password") or self.stored_secret):
                self.add_error("password", "Password is required (or choose “No authentication”).")
        return data

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
