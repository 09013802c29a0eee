from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings

from datasources.errors import PluginError
from datasources.plugins.base import (
    ActionResult,
    ActionSpec,
    ConnectionCheck,
    FieldSpec,
    HtmlWhen,
    Plugin,
    Prepared,
    jsonable,
)
from datasources.plugins.smtp import inline, invite, sandbox, transport
from datasources.plugins.smtp.compose import ComposedEmail, build_email
from datasources.plugins.smtp.config import (
    NOT_CONNECTED,
    Auth,
    OAuth2Secret,
    SmtpConfigForm,
    SmtpSettings,
)
from datasources.plugins.smtp.custom_headers import read_custom_headers
from datasources.plugins.smtp.message import LABELS, Attachment, parse_addresses
from datasources.plugins.smtp.stored import Envelope, message_pieces, message_size, stored_form
from workspaces.models import WorkspaceFile

#: The success data of a send, exactly as in the seed's response format.
SENT = {"success": True, "message": "Email sent successfully"}

_HTML_BODY = HtmlWhen("body_type", frozenset({"html", "text/html"}))

#: The Send email fields in the seed's order; the editor shows them in this order (the
#: Reply To toggle after From, the body type beside Body, From name not at all).
SEND_EMAIL = ActionSpec(
    "send_email",
    "Send email",
    (
        FieldSpec(
            "from",
            LABELS["from"],
            help="The address the email is sent from; Name <address> sets a display name.",
            placeholder="Support <support@example.com>",
            required=True,
        ),
        FieldSpec("from_name", LABELS["from_name"], shown=False),
        FieldSpec(
            "set_reply_to", LABELS["set_reply_to"], kind="toggle", bindable=False, default=False
        ),
        FieldSpec(
            "reply_to",
            LABELS["reply_to"],
            help="Where replies to this email go.",
            placeholder="<< form1.data.email >>",
        ),
        FieldSpec(
            "to",
            LABELS["to"],
            help="Recipients: separate several with commas, or bind a list.",
            placeholder="<< form1.data.email >>",
            required=True,
        ),
        FieldSpec(
            "cc",
            LABELS["cc"],
            help="Copied recipients: separate several with commas, or bind a list.",
            placeholder="team@example.com, << cc_input.value >>",
        ),
        FieldSpec(
            "bcc",
            LABELS["bcc"],
            help="Hidden recipients: in the envelope only, never in a header.",
            placeholder="archive@example.com",
        ),
        FieldSpec("subject", LABELS["subject"], placeholder="Welcome, << form1.data.name >>!"),
        FieldSpec(
            "body",
            LABELS["body"],
            kind="textarea",
            help="In an HTML body, bound values are escaped; add |safe for HTML you trust.",
            placeholder="Hello << form1.data.name >>,\n\nthanks for writing to us.",
            html=_HTML_BODY,
        ),
        FieldSpec(
            "body_type",
            LABELS["body_type"],
            kind="choice",
            bindable=False,
            choices=(("text", "Text"), ("html", "HTML")),
            aliases={"text/html": "html"},
            default="text",
            beside="body",
        ),
        FieldSpec(
            "html_body",
            LABELS["html_body"],
            kind="textarea",
            help="Sent beside Body as its HTML version (Body type Text); bound values are "
            "escaped, add |safe for HTML you trust. Empty: Body alone decides.",
            placeholder="<p>Hello << form1.data.name >>,</p>",
            html=True,
        ),
        FieldSpec(
            "headers",
            LABELS["headers"],
            kind="textarea",
            help='JSON: {"Name": "value"} or a list of {"name": ..., "value": ...}; values '
            "bound into it are escaped as JSON text. From, To, Subject, Content-* and other "
            "headers Kiln writes are refused.",
            placeholder='{"List-Unsubscribe": "<https://example.com/unsubscribe?id=<< '
            'form1.data.id >>>"}',
            json=True,
            check=read_custom_headers,
        ),
        FieldSpec(
            "attachments",
            LABELS["attachments"],
            kind="files",
            help="Files from a file picker (<< files1.files >>), workspace files, or a data "
            "URL typed here (data:application/pdf;base64,...).",
            placeholder="<< files1.files >>",
        ),
        FieldSpec(
            inline.FIELD,
            inline.LABEL,
            kind="files",
            help="Images shown inside an HTML body: each is referenced by its file name, "
            'logo.png as <img src="cid:logo.png">; Preview lists each reference to copy. '
            "A data URL typed here is image-1.png.",
            placeholder="<< logo_picker.files >>",
        ),
        FieldSpec(
            "invite_start",
            invite.LABELS["invite_start"],
            help="Sends a calendar invitation when set: ISO 8601, 2027-01-15T09:00 in the "
            "time zone below, or with an offset (+01:00, Z). To and CC are invited.",
            placeholder="<< form1.data.meeting_at >>",
        ),
        FieldSpec(
            "invite_end",
            invite.LABELS["invite_end"],
            help="Empty: one hour after the start.",
            placeholder="2027-01-15T10:00",
        ),
        FieldSpec(
            "invite_timezone",
            invite.LABELS["invite_timezone"],
            help="For times without an offset: an IANA name; empty is the server's time zone.",
            placeholder="Europe/Berlin",
        ),
        FieldSpec(
            "invite_summary",
            invite.LABELS["invite_summary"],
            help="Empty: the subject.",
        ),
        FieldSpec("invite_location", invite.LABELS["invite_location"]),
        FieldSpec("invite_description", invite.LABELS["invite_description"], kind="textarea"),
    ),
    preview_label="Preview email",
    run_help="sends the email for real, with the test values.",
    preview_help="shows the email that would be sent, without sending it.",
)
SEND_EMAIL_FIELDS = tuple(SEND_EMAIL.fields)


#: The key of a run's payload_meta holding the Content-IDs of its inline images, which
#: are its first files.
INLINE_CIDS = "inline_cids"

#: The headers a preview shows, in this order (those the message has).
PREVIEW_HEADERS = ("From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID")


class SmtpPlugin(Plugin):
    kind = "smtp"
    label = "SMTP"
    config_form = SmtpConfigForm
    config_template = "datasources/smtp/config.html"
    page_template = "datasources/smtp/page.html"
    preview_template = "datasources/smtp/preview.html"
    actions = {"send_email": SEND_EMAIL}
    secret_fields = ("password", "client_secret", "refresh_token")

    def load_config(self, config: dict, secret: str) -> SmtpSettings:
        return SmtpSettings.from_stored(config, secret)

    def test_connection(self, settings: SmtpSettings) -> ConnectionCheck:
        try:
            with transport.connection(settings):
                pass
        except PluginError as exc:
            return ConnectionCheck(False, exc.message)
        how = {"starttls": " over STARTTLS", "ssl": " over SSL/TLS"}.get(settings.security, "")
        auth = " and authenticated" if settings.auth in Auth.SIGNED_IN else ""
        return ConnectionCheck(
            True, f"Connected to {settings.host}:{settings.port}{how}{auth} successfully."
        )

    def config_summary(self, config: dict) -> str:
        host, port = config.get("host"), config.get("port")
        return f"{host}:{port}" if host else ""

    def run_summary(self, action: str, fields: dict) -> dict[str, Any]:
        return {"to": fields.get("to", ""), "subject": fields.get("subject", "")}

    def prepare(self, action: str, fields: dict, context: Any = None) -> Prepared:
        email = build_email(fields, resolve_file=_file_resolver(context), placeholders=True)
        stored = {name: fields[name] for name in SEND_EMAIL_FIELDS if name in fields}
        # Files are stored as the run's files, never in its fields.
        stored.pop("attachments", None)
        stored.pop(inline.FIELD, None)
        message, envelope = stored_form(email)
        # The run's files are the images, then the attachments: a rebuild splits them.
        meta = {**envelope.as_json(), INLINE_CIDS: [image.cid for image in email.inline_images]}
        config = getattr(context, "config", None) or {}
        planned = sandbox.plan(
            config.get("sandbox") or "", config.get("sandbox_address") or "", envelope.recipients
        )
        if planned is not None:
            # The run keeps its original recipients, where the outbox shows them.
            meta["sandbox"] = planned.as_json()
        return Prepared(
            fields=jsonable(stored),
            files=email.files,
            file_fields=[image.field for image in email.inline_images]
            + ["attachments"] * len(email.attachments),
            payload=message,
            payload_meta=meta,
        )

    def setup_warning(self, config: dict, secret: str) -> str:
        """An OAuth2 datasource saved without a refresh token sends nothing until it
        gets one; saving it is allowed (Connect needs the saved settings first)."""
        if config.get("auth") == Auth.OAUTH2 and not OAuth2Secret.parse(secret).refresh_token:
            return NOT_CONNECTED
        return ""

    def sandbox_note(self, config: dict) -> str:
        return sandbox.note(config.get("sandbox") or "", config.get("sandbox_address") or "")

    def preview(self, action: str, fields: dict, context: Any = None) -> dict:
        """The email ``execute`` would send, built and checked the same way, not sent:
        its headers, the BCC and envelope recipients, both bodies, the attachments, the
        inline images (shown in the HTML body) and the invite."""
        email = build_email(fields, resolve_file=_file_resolver(context))
        message = email.message
        headers = [
            (name, str(message[name])) for name in PREVIEW_HEADERS if message[name] is not None
        ]
        headers += [(h.name, h.value) for h in email.custom_headers]
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        framed = (
            inline.preview_html(html.get_content(), email.inline_images)
            if html is not None
            else None
        )
        return {
            "headers": headers,
            # Already checked by build_email; parsed again because BCC is in no header.
            "bcc": [a.addr_spec for a in parse_addresses("bcc", fields.get("bcc"))],
            "envelope_to": list(email.recipients),
            "text": text.get_content() if text is not None else "",
            "html": framed.html if framed is not None else None,
            # Typed beside an HTML body (not derived from it): shown open.
            "text_given": bool(str(fields.get("html_body") or "").strip()),
            "attachments": [
                {"name": a.name, "type": a.content_type, "size": a.size} for a in email.attachments
            ],
            **_preview_extras(email, framed.shown if framed is not None else frozenset()),
        }

    def execute(
        self, settings: SmtpSettings, action: str, fields: dict, context: Any = None
    ) -> ActionResult:
        meta = getattr(context, "payload_meta", None) or {}
        envelope = Envelope.from_json(meta)
        payload = getattr(context, "payload", None)
        files = list(getattr(context, "files", None) or [])
        if envelope is None or payload is None:
            # A run stored without its message (or called directly): built here.
            if files:
                fields = {**fields, **_files_as_fields(files, meta)}
            email = build_email(fields, resolve_file=_file_resolver(context), placeholders=True)
            payload, envelope = stored_form(email)
            files = email.files
        message = _Message(
            message_pieces(bytes(payload), envelope, files),
            message_size(bytes(payload), envelope, files),
            "attachments" if files else "body",
        )
        planned = sandbox.plan_for_send(
            settings.sandbox, settings.sandbox_address, meta, envelope.recipients
        )
        if planned is not None:
            return _send_to_sandbox(settings, envelope, message, planned)
        reply = _send(settings, envelope.sender, envelope.recipients, message, envelope.smtputf8)
        return ActionResult(
            data=dict(SENT),
            details={
                "message_id": envelope.message_id,
                "recipients": envelope.recipients,
                "server_reply": reply,
            },
        )


@dataclass(frozen=True)
class _Message:
    """The message to send, in pieces, with its size (declared to the server) and the
    field to blame when it is too large for the server."""

    pieces: Iterator[bytes]
    size: int
    size_field: str


def _send(
    settings: SmtpSettings, sender: str, recipients: list[str], message: _Message, smtputf8: bool
):
    return transport.send_message(
        settings,
        sender,
        recipients,
        message.pieces,
        reuse_seconds=django_settings.KILN_SMTP_REUSE_SECONDS,
        smtputf8=smtputf8,
        size=message.size,
        size_field=message.size_field,
    )


def _send_to_sandbox(
    settings: SmtpSettings, envelope: Envelope, message: _Message, planned: sandbox.Plan
) -> ActionResult:
    """The message, with the header naming its original recipients, to the dev mailbox
    or to the catch-all address alone; never to the recipients."""
    line = sandbox.header_line(planned.original_recipients, envelope.smtputf8)
    pieces = sandbox.with_header(message.pieces, line)
    details: dict[str, Any] = {"message_id": envelope.message_id, "sandbox": planned.as_json()}
    if planned.mode == sandbox.Sandbox.DEV_MAILBOX:
        stored = sandbox.dev_mailbox_store(envelope.sender, planned.original_recipients, pieces)
        details.update(recipients=[], dev_mailbox_message=stored.pk)
    else:
        to = [planned.delivered_to]
        sized = _Message(pieces, message.size + len(line), message.size_field)
        reply = _send(settings, envelope.sender, to, sized, envelope.smtputf8)
        details.update(recipients=to, server_reply=reply)
    return ActionResult(data=dict(SENT), details=details)


def _preview_extras(email: ComposedEmail, shown: frozenset[str]) -> dict[str, Any]:
    """The inline images, each with the ``cid:`` reference to paste and whether the
    frame shows it (``shown``: within its size limits), and the invite."""
    html = email.message.get_body(preferencelist=("html",))
    used = set(inline.references(html.get_content())) if html is not None else set()
    return {
        "inline_images": [
            {
                "name": image.file.name,
                "cid": image.cid,
                "type": image.file.content_type,
                "size": image.file.size,
                "used": image.cid in used,
                "shown": image.cid in shown,
            }
            for image in email.inline_images
        ],
        "invite": invite.describe(email.message, email.invite) if email.invite else None,
        # Attached beside the attachments asked for: listed with them.
        "invite_file": invite.attached_file(email.message) if email.invite else None,
    }


def _files_as_fields(files: list, meta: dict) -> dict[str, list]:
    """A stored run's files as the fields they came from, to build its message again:
    the first ones are its inline images (one per Content-ID ``prepare`` recorded), each
    an attachment marked inline with its own Content-ID, the rest its attachments."""
    cids = list(meta.get(INLINE_CIDS) or [])
    images = [
        {"name": file.name, "data": bytes(file.data), "inline": True, "cid": cid}
        for file, cid in zip(files, cids, strict=False)
    ]
    attachments = [_in_memory(file) for file in files[len(cids) :]]
    return {"attachments": images + attachments, inline.FIELD: []}


def _in_memory(file: Any) -> Attachment:
    return Attachment(file.name, file.content_type, bytes(file.data))


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
