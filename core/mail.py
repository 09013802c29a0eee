"""Reading an email as a person would see it: headers decoded, the text and HTML bodies,
the attachments. One home for it: the dev mailbox shows the mail it received with it,
the outbox the mail a run stored. Free of Django.

Mail read here was written by someone else (anyone who reaches the dev mailbox's port,
or a binding fed by a form), so its HTML body is only ever shown in a sandboxed frame
with ``SANDBOX_HEADERS`` on its response."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage, Message, MIMEPart
from functools import cached_property
from typing import TypedDict

#: The headers of a response holding a mail's HTML body: no script, no origin
#: (sandbox), no network (remote images and fonts would tell the sender the mail was
#: opened), inline styles allowed; never sniffed as another type, no referrer.
SANDBOX_HEADERS = {
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class AttachmentInfo(TypedDict):
    index: int
    filename: str
    content_type: str
    size: int


class ParsedMail:
    """An email parsed from its bytes on demand: what you see is what a recipient gets,
    and a parser fix applies to mail that is already stored."""

    def __init__(self, raw: bytes):
        self.raw = raw

    @cached_property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def header_value(self, name: str) -> str:
        """The first ``name`` header, decoded; "" when absent."""
        for header_name, value in self.headers:
            if header_name.lower() == name.lower():
                return value
        return ""

    @cached_property
    def headers(self) -> list[tuple[str, str]]:
        """Every header in order, with encoded words (=?utf-8?...?=) decoded."""
        message = self.message
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
        return self.message.get_body(preferencelist=("plain",))

    @cached_property
    def _html_part(self) -> MIMEPart | None:
        return self.message.get_body(preferencelist=("html",))

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
            for part in _leaves(self.message)
            if not any(part is body for body in bodies if body is not None)
        ]

    @cached_property
    def attachments(self) -> list[AttachmentInfo]:
        return [
            AttachmentInfo(
                index=index,
                filename=part.get_filename() or f"attachment-{index + 1}",
                content_type=part.get_content_type(),
                size=len(_bytes_of(part)),
            )
            for index, part in enumerate(self._attachment_parts)
        ]

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
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0].as_bytes()
    return part.get_payload(decode=True) or b""  # type: ignore[return-value]


def _text_of(part: MIMEPart) -> str:
    try:
        text = part.get_content()
    except (LookupError, ValueError):
        # An unknown or lying charset: show what we can rather than fail the page.
        text = (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")  # type: ignore[union-attr]
    # Mail on the wire has CRLF line ends; pages and tests want plain newlines.
    return text.replace("\r\n", "\n")
