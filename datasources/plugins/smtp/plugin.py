from __future__ import annotations

from typing import Any

from datasources.errors import PluginError
from datasources.plugins.base import (
    ActionResult,
    ActionSpec,
    ConnectionCheck,
    Plugin,
    Prepared,
)
from datasources.plugins.smtp import transport
from datasources.plugins.smtp.config import SmtpConfigForm, SmtpSettings
from datasources.plugins.smtp.message import Attachment, build_email, parse_addresses
from workspaces.models import WorkspaceFile

#: The success data of a send, exactly as in the seed's response format.
SENT = {"success": True, "message": "Email sent successfully"}

SEND_EMAIL_FIELDS = (
    "from",
    "from_name",
    "set_reply_to",
    "reply_to",
    "to",
    "cc",
    "bcc",
    "subject",
    "body",
    "body_type",
    "attachments",
)


#: The headers a preview shows, in this order (those the message has).
PREVIEW_HEADERS = ("From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID")


class SmtpPlugin(Plugin):
    kind = "smtp"
    label = "SMTP"
    config_form = SmtpConfigForm
    actions = {"send_email": ActionSpec("send_email", "Send email", SEND_EMAIL_FIELDS)}

    def load_config(self, config: dict, secret: str) -> SmtpSettings:
        return SmtpSettings.from_stored(config, secret)

    def test_connection(self, settings: SmtpSettings) -> ConnectionCheck:
        try:
            with transport.connection(settings):
                pass
        except PluginError as exc:
            return ConnectionCheck(False, exc.message)
        how = {"starttls": " over STARTTLS", "ssl": " over SSL/TLS"}.get(settings.security, "")
        auth = " and authenticated" if settings.auth == "password" else ""
        return ConnectionCheck(
            True, f"Connected to {settings.host}:{settings.port}{how}{auth} successfully."
        )

    html_candidates = frozenset({"body"})

    def html_fields(self, action: str, fields: dict) -> set[str]:
        body_type = str(fields.get("body_type") or "").strip().lower()
        return {"body"} if body_type in ("html", "text/html") else set()

    def prepare(self, action: str, fields: dict, context: Any = None) -> Prepared:
        self._check_action(action)
        email = build_email(fields, resolve_file=_file_resolver(context))
        stored = {name: fields[name] for name in SEND_EMAIL_FIELDS if name in fields}
        stored.pop("attachments", None)
        return Prepared(fields=_jsonable(stored), files=email.attachments)

    def preview(self, action: str, fields: dict, context: Any = None) -> dict:
        """The email ``execute`` would send, built and checked the same way, not sent:
        its headers, the BCC and envelope recipients, both bodies and the attachments."""
        self._check_action(action)
        email = build_email(fields, resolve_file=_file_resolver(context))
        message = email.message
        headers = [
            (name, str(message[name])) for name in PREVIEW_HEADERS if message[name] is not None
        ]
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        return {
            "headers": headers,
            # Already checked by build_email; parsed again because BCC is in no header.
            "bcc": [a.addr_spec for a in parse_addresses("bcc", fields.get("bcc"))],
            "envelope_to": list(email.recipients),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else None,
            "attachments": [
                {"name": a.name, "type": a.content_type, "size": a.size} for a in email.attachments
            ],
        }

    def execute(
        self, settings: SmtpSettings, action: str, fields: dict, context: Any = None
    ) -> ActionResult:
        self._check_action(action)
        files = getattr(context, "files", None)
        if files is not None:
            fields = {**fields, "attachments": list(files)}
        email = build_email(fields, resolve_file=_file_resolver(context))
        with transport.connection(settings) as session:
            reply = session.send(
                email.sender, email.recipients, email.as_bytes(), smtputf8=email.smtputf8
            )
        return ActionResult(
            data=dict(SENT),
            details={
                "message_id": email.message["Message-ID"],
                "recipients": email.recipients,
                "server_reply": reply,
            },
        )

    def _check_action(self, action: str) -> None:
        if action not in self.actions:
            raise PluginError(f"SMTP has no action {action!r}.", field="action")


def _jsonable(value):
    """Evaluated fields as stored on a run: JSON values, anything else as text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _file_resolver(context: Any):
    workspace = getattr(context, "workspace", None)
    if workspace is None:
        return None

    def resolve(file_id) -> Attachment:
        try:
            stored = WorkspaceFile.objects.get(workspace=workspace, pk=int(file_id))
        except (WorkspaceFile.DoesNotExist, TypeError, ValueError):
            raise LookupError(file_id) from None
        with stored.file.open("rb") as f:
            return Attachment(stored.name, stored.content_type, f.read())

    return resolve
