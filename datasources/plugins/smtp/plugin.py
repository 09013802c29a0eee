from __future__ import annotations

from typing import Any

from datasources.errors import PluginError
from datasources.plugins.base import ActionResult, ActionSpec, ConnectionCheck, Plugin
from datasources.plugins.smtp import transport
from datasources.plugins.smtp.config import SmtpConfigForm, SmtpSettings
from datasources.plugins.smtp.message import Attachment, build_email

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

    def execute(
        self, settings: SmtpSettings, action: str, fields: dict, context: Any = None
    ) -> ActionResult:
        if action not in self.actions:
            raise PluginError(f"SMTP has no action {action!r}.", field="action")
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


def _file_resolver(context: Any):
    workspace = getattr(context, "workspace", None)
    if workspace is None:
        return None

    def resolve(file_id) -> Attachment:
        from builder.models import WorkspaceFile

        try:
            stored = WorkspaceFile.objects.get(workspace=workspace, pk=int(file_id))
        except (WorkspaceFile.DoesNotExist, TypeError, ValueError):
            raise LookupError(file_id) from None
        with stored.file.open("rb") as f:
            return Attachment(stored.name, stored.content_type, f.read())

    return resolve
