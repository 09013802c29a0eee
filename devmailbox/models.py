"""A message the dev mailbox received, stored as the exact bytes that came in.

Everything shown on the pages (headers, bodies, attachments) is parsed from ``raw`` on
demand, so what you see is what a real recipient would get, and a parser fix applies to
mail that is already stored.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage, MIMEPart
from functools import cached_property
from typing import TypedDict

from django.db import models

# RFC 5322's line limit; a longer subject is truncated for the list, never rejected.
SUBJECT_MAX_LENGTH = 998


class AttachmentInfo(TypedDict):
    index: int
    filename: str
    content_type: str
    size: int


class MailboxMessage(models.Model):
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The SMTP envelope, which can differ from the headers (Bcc, bounces to "<>").
    mail_from = models.CharField(max_length=998, blank=True)
    rcpt_tos = models.JSONField(default=list)
    raw = models.BinaryField()
    subject = models.CharField(max_length=SUBJECT_MAX_LENGTH, blank=True)
    size = models.PositiveIntegerField()
    # Kept at receive time so the list page never parses every stored message.
    attachment_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return self.subject or "(no subject)"

    @classmethod
    def receive(cls, mail_from: str, rcpt_tos: list[str], raw: bytes) -> MailboxMessage:
        """Store one message as received over SMTP."""
        message = cls(
            mail_from=mail_from[:998],
            rcpt_tos=list(rcpt_tos),
            raw=bytes(raw),
            size=len(raw),
        )
        message.subject = message.header_value("Subject")[:SUBJECT_MAX_LENGTH]
        message.attachment_count = len(message.attachments)
        message.save()
        return message

    # -- parsing ---------------------------------------------------------------------

    @property
    def raw_bytes(self) -> bytes:
        # PostgreSQL hands BinaryField back as a memoryview.
        return bytes(self.raw)

    @cached_property
    def parsed(self) -> EmailMessage:
        return email.message_from_bytes(self.raw_bytes, policy=email.policy.default)

    def header_value(self, name: str) -> str:
        """The first ``name`` header, decoded; "" when absent."""
        for header_name, value in self.headers:
            if header_name.lower() == name.lower():
                return value
        return ""

    @cached_property
    def headers(self) -> list[tuple[str, str]]:
        """Every header in order, with encoded words (=?utf-8?...?=) decoded."""
        message = self.parsed
        decoded = []
        for name, raw_value in message.raw_items():
            try:
                value = str(message.policy.header_fetch_parse(name, raw_value))
            except Exception:
                # A header the parser chokes on is still worth showing as it came in.
                value = str(raw_value)
            decoded.append((name, value))
        return decoded

    @cached_property
    def _text_part(self) -> MIMEPart | None:
        return self.parsed.get_body(preferencelist=("plain",))

    @cached_property
    def _html_part(self) -> MIMEPart | None:
        return self.parsed.get_body(preferencelist=("html",))

    @property
    def text_body(self) -> str | None:
        return _text_of(self._text_part) if self._text_part is not None else None

    @property
    def html_body(self) -> str | None:
        return _text_of(self._html_part) if self._html_part is not None else None

    @cached_property
    def _attachment_parts(self) -> list[MIMEPart]:
        # Every leaf that is not one of the two bodies: attachments proper, inline images,
        # forwarded messages. iter_attachments() would miss those nested in
        # multipart/related or multipart/alternative.
        bodies = (self._text_part, self._html_part)
        return [
            part
            for part in _leaves(self.parsed)
            if not any(part is body for body in bodies if body is not None)
        ]

    @cached_property
    def attachments(self) -> list[AttachmentInfo]:
        infos = []
        for index, part in enumerate(self._attachment_parts):
            infos.append(
                AttachmentInfo(
                    index=index,
                    filename=part.get_filename() or f"attachment-{index + 1}",
                    content_type=part.get_content_type(),
                    size=len(_bytes_of(part)),
                )
            )
        return infos

    def attachment(self, index: int) -> tuple[AttachmentInfo, bytes]:
        """Attachment ``index`` (as listed by ``attachments``) and its decoded bytes.

        Raises IndexError for an index that does not exist.
        """
        if not 0 <= index < len(self._attachment_parts):
            raise IndexError(index)
        return self.attachments[index], _bytes_of(self._attachment_parts[index])


def _leaves(part: MIMEPart) -> Iterator[MIMEPart]:
    # message/rfc822 counts as one leaf: a forwarded mail is one attachment, not its parts.
    if part.get_content_maintype() == "multipart":
        for child in part.iter_parts():
            yield from _leaves(child)
    else:
        yield part


def _bytes_of(part: MIMEPart) -> bytes:
    if part.get_content_maintype() == "message":
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], MIMEPart):
            return payload[0].as_bytes()
    decoded = part.get_payload(decode=True)
    return decoded if isinstance(decoded, bytes) else b""


def _text_of(part: MIMEPart) -> str:
    try:
        text = part.get_content()
    except (LookupError, ValueError):
        # An unknown or lying charset: show what we can rather than fail the page.
        text = _bytes_of(part).decode("utf-8", errors="replace")
    # Mail on the wire has CRLF line ends; pages and tests want plain newlines.
    return text.replace("\r\n", "\n")
