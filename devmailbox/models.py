"""A message the dev mailbox received, stored as the exact bytes that came in.

Everything shown on the pages (headers, bodies, attachments) is parsed from ``raw`` on
demand, so what you see is what a real recipient would get, and a parser fix applies to
mail that is already stored.
"""

from __future__ import annotations

from email.message import EmailMessage
from functools import cached_property

from django.db import models

from core.mail import AttachmentInfo, ParsedMail

# RFC 5322's line limit; a longer subject is truncated for the list, never rejected.
SUBJECT_MAX_LENGTH = 998


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

    # -- parsing: core.mail, shared with the outbox ------------------------------------

    @property
    def raw_bytes(self) -> bytes:
        # PostgreSQL hands BinaryField back as a memoryview.
        return bytes(self.raw)

    @cached_property
    def mail(self) -> ParsedMail:
        return ParsedMail(self.raw_bytes)

    @property
    def parsed(self) -> EmailMessage:
        return self.mail.message

    def header_value(self, name: str) -> str:
        return self.mail.header_value(name)

    @property
    def headers(self) -> list[tuple[str, str]]:
        return self.mail.headers

    @property
    def text_body(self) -> str | None:
        return self.mail.text_body

    @property
    def html_body(self) -> str | None:
        return self.mail.html_body

    @property
    def attachments(self) -> list[AttachmentInfo]:
        return self.mail.attachments

    def attachment(self, index: int) -> tuple[AttachmentInfo, bytes]:
        return self.mail.attachment(index)
