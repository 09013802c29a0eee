"""The whole email of a Send email action: the message ``message.build_email`` makes
from the address, subject, body and attachment fields, with the inline images
(datasources.plugins.smtp.inline) and the calendar invite
(datasources.plugins.smtp.invite) added to it.

The images' bodies are placeholders like the attachments' when the message is built to
be stored with a run; they come first in the message (inside its HTML part), so the
run's files are the images, then the attachments, in the order of the placeholders.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from django.conf import settings

from datasources.errors import FieldError
from datasources.plugins.smtp import inline, invite
from datasources.plugins.smtp.message import Attachment, Email, FileResolver
from datasources.plugins.smtp.message import build_email as build_message


@dataclass
class ComposedEmail(Email):
    """An ``Email`` with its inline images and invite, which the preview shows apart."""

    inline_images: list[inline.InlineImage] = field(default_factory=list)
    invite: invite.Invite | None = None

    @property
    def files(self) -> list[Attachment]:
        """Every file the message holds, in the order of ``placeholders``."""
        return [image.file for image in self.inline_images] + self.attachments


def html_field(fields: dict) -> str:
    """The field holding the HTML body: an error about a ``cid:`` names it."""
    return "html_body" if fields.get("html_body") else "body"


def build_email(
    fields: dict, resolve_file: FileResolver | None = None, *, placeholders: bool = False
) -> ComposedEmail:
    """Check every field and build the message (``message.build_email``), inline images
    and invite included. Raises ``FieldError`` naming the field."""
    images = inline.read_images(fields, resolve_file)
    plain = {**fields, "attachments": inline.not_inline(fields.get("attachments"))}
    email = build_message(plain, resolve_file, placeholders=placeholders)
    _check_total(images, email.attachments)
    message = email.message
    marks: list[str] = []
    if images:
        marks = inline.attach(message, images, placeholders=placeholders)
        html = message.get_body(preferencelist=("html",))
        assert html is not None  # inline.attach refuses a message without one
        inline.check_references(html.get_content(), images, html_field(fields))
    else:
        _check_no_references(message, fields)
    asked = invite.read_invite(fields, str(message["Subject"] or ""))
    if asked is not None:
        invite.attach(message, asked)
    values = {f.name: getattr(email, f.name) for f in dataclasses.fields(Email)}
    values["placeholders"] = marks + email.placeholders
    return ComposedEmail(**values, inline_images=images, invite=asked)


def _check_total(images: list[inline.InlineImage], attachments: list[Attachment]) -> None:
    """Inline images count in the attachment size limit, with the attachments."""
    limit = settings.KILN_SMTP_MAX_ATTACHMENT_BYTES
    total = sum(image.file.size for image in images) + sum(a.size for a in attachments)
    if images and total > limit:
        raise FieldError(
            images[-1].field,
            f"Inline images and attachments total {total:,} bytes, over the limit of "
            f"{limit:,} bytes.",
        )


def _check_no_references(message, fields: dict) -> None:
    html = message.get_body(preferencelist=("html",))
    if html is not None:
        inline.check_references(html.get_content(), [], html_field(fields))
