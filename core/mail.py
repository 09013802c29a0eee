"""Reading an email as a person would see it: headers decoded, the text and HTML bodies,
the attachments. One home for it: the dev mailbox shows the mail it received with it,
the outbox the mail a run stored. Free of Django.

Mail read here was written by someone else (anyone who reaches the dev mailbox's port,
or a binding fed by a form), so its HTML body is only ever shown in a sandboxed frame
with ``SANDBOX_HEADERS`` on its response."""

from __future__ import annotations

import base64
import email
import email.policy
import re
import urllib.parse
from collections.abc import Collection, Iterator, Mapping
from email.message import EmailMessage, Message, MIMEPart
from functools import cached_property
from typing import NamedTuple, TypedDict

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


#: A ``cid:`` URL where HTML loads an image (``src=``, ``background=``, CSS ``url()``),
#: up to the quote, space or bracket that ends it; "cid:" in the text is not one. No two
#: repeats can match the same spaces: a run of spaces is scanned once (no backtracking).
CID_REFERENCE = re.compile(
    r"""(?P<lead>(?:\b(?:src|background)\s*=|\burl\()\s*(?:["']\s*)?)"""
    r"""cid:(?P<cid>[^\s"'<>()]+)""",
    re.IGNORECASE,
)
#: A frame shows an inline image as a data: URL up to this size; a larger one stays a
#: broken cid: reference, so that a page never carries megabytes of base64.
FRAME_IMAGE_BYTES = 2 * 1024 * 1024
#: And all its images together up to this many bytes (each reference counts: an image
#: referenced twice is written twice); the images beyond it stay cid: references.
FRAME_TOTAL_BYTES = 4 * 1024 * 1024
#: The only types a frame writes into a data: URL, matched exactly: the type comes from
#: the mail (a received part's Content-Type may hold a quote that would end the
#: attribute it is written in), so it is never copied from there as it is.
FRAME_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def cid_references(html: str) -> list[str]:
    """The Content-IDs an HTML body refers to by ``cid:``, each once, in order."""
    found = (urllib.parse.unquote(m["cid"]) for m in CID_REFERENCE.finditer(html))
    return list(dict.fromkeys(found))


class FramedHtml(NamedTuple):
    """An HTML body ready for a frame, and the Content-IDs of the images shown in it."""

    html: str
    shown: frozenset[str]


def with_data_urls(html: str, images: Mapping[str, tuple[str, bytes]]) -> FramedHtml:
    """``html`` with each ``cid:`` reference to one of ``images`` (Content-ID -> type and
    bytes) replaced by a data: URL of it, for a sandboxed frame whose CSP allows data:
    images, never for mail that is sent. Only PNG, JPEG, GIF and WebP images, each up to
    ``FRAME_IMAGE_BYTES`` and all together up to ``FRAME_TOTAL_BYTES``; the others stay
    ``cid:`` references (a broken image), which the caller lists as not shown."""
    shown: set[str] = set()
    budget = FRAME_TOTAL_BYTES

    def replace(match: re.Match) -> str:
        nonlocal budget
        cid = urllib.parse.unquote(match["cid"])
        image = images.get(cid)
        if image is None:
            return match.group(0)
        content_type, data = image
        content_type = content_type.lower()
        if content_type not in FRAME_IMAGE_TYPES or len(data) > min(FRAME_IMAGE_BYTES, budget):
            return match.group(0)
        budget -= len(data)
        shown.add(cid)
        encoded = base64.b64encode(data).decode("ascii")
        return f"{match['lead']}data:{content_type};base64,{encoded}"

    framed = CID_REFERENCE.sub(replace, html)
    return FramedHtml(framed, frozenset(shown))


class AttachmentInfo(TypedDict):
    index: int
    filename: str
    content_type: str
    size: int


class ParsedMail:
    """An email parsed from its bytes on demand: what you see is what a recipient gets,
    and a parser fix applies to mail that is already stored."""

    def __init__(self, raw: bytes, bodies: Mapping[str, bytes] | None = None):
        self.raw = raw
        #: A stored message's files, each by the placeholder standing for its body.
        self.bodies = dict(bodies or {})

    @cached_property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        if self.bodies:
            _fill_bodies(parsed, self.bodies)
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

    @property
    def html_with_images(self) -> str | None:
        """The HTML body with its inline images (parts with a Content-ID) as data: URLs,
        for the sandboxed frame that shows it."""
        body = self.html_body
        return with_data_urls(body, self._inline_images).html if body is not None else None

    @cached_property
    def _inline_images(self) -> dict[str, tuple[str, bytes]]:
        # Only the image types a frame may show in an <img> (never SVG).
        images: dict[str, tuple[str, bytes]] = {}
        for part in self._attachment_parts:
            cid = str(part.get("Content-ID") or "").strip().strip("<>")
            content_type = part.get_content_type()
            if cid and content_type in FRAME_IMAGE_TYPES:
                images.setdefault(cid, (content_type, _bytes_of(part)))
        return images

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
        """The files a recipient is offered: not the inline images (shown in the HTML
        body) nor an invite's calendar (a version of the body, shown as the invite)."""
        return [
            _info(index, part)
            for index, part in enumerate(self._attachment_parts)
            if index not in self._inline_cids and part is not self._calendar_part
        ]

    def own_attachments(self, placeholders: Collection[str]) -> list[AttachmentInfo]:
        """The attachments whose bodies the message holds itself rather than one of
        ``placeholders`` (a stored message's files, listed from their own records): an
        invite's invite.ics, made with the message."""
        parts = self._attachment_parts
        return [
            info
            for info in self.attachments
            if _placeholder(parts[info["index"]]) not in placeholders
        ]

    @cached_property
    def inline_images(self) -> list[InlineImageInfo]:
        """The images the HTML body shows by ``cid:``, in the order of the message."""
        return [
            InlineImageInfo(**_info(index, part), cid=self._inline_cids[index])
            for index, part in enumerate(self._attachment_parts)
            if index in self._inline_cids
        ]

    @cached_property
    def _inline_cids(self) -> dict[int, str]:
        """Content-ID by index of the image parts the HTML body refers to."""
        used = set(cid_references(self.html_body or ""))
        found = {}
        for index, part in enumerate(self._attachment_parts):
            cid = str(part.get("Content-ID") or "").strip().strip("<>")
            if cid in used and part.get_content_maintype() == "image":
                found[index] = cid
        return found

    @cached_property
    def _calendar_part(self) -> MIMEPart | None:
        """The text/calendar version of the body (an invite), as calendar services send
        it: inside multipart/alternative."""
        for part in self.message.walk():
            if part.get_content_type() == "multipart/alternative":
                for child in part.iter_parts():
                    if child.get_content_type() == "text/calendar":
                        return child
        return None

    @property
    def calendar(self) -> bytes | None:
        """The calendar version of the body (an invite: core.invites reads it); None
        when there is none."""
        return _bytes_of(self._calendar_part) if self._calendar_part is not None else None

    def attachment(self, index: int) -> tuple[AttachmentInfo, bytes]:
        """File ``index`` (an ``index`` of ``attachments`` or ``inline_images``) and its
        decoded bytes.

        Raises IndexError for an index that does not exist.
        """
        if not 0 <= index < len(self._attachment_parts):
            raise IndexError(index)
        part = self._attachment_parts[index]
        return _info(index, part), _bytes_of(part)


class InlineImageInfo(AttachmentInfo):
    cid: str


def _info(index: int, part: MIMEPart) -> AttachmentInfo:
    return AttachmentInfo(
        index=index,
        filename=part.get_filename() or f"attachment-{index + 1}",
        content_type=part.get_content_type(),
        size=len(_bytes_of(part)),
    )


def _fill_bodies(message: EmailMessage, bodies: Mapping[str, bytes]) -> None:
    """Put each file in place of the placeholder standing for its body (a stored
    message's), base64 as the part says."""
    for part in _leaves(message):
        placeholder = _placeholder(part)
        if placeholder in bodies:
            part.set_payload(base64.encodebytes(bodies[placeholder]).decode("ascii"))


def _placeholder(part: MIMEPart) -> str:
    """The text of ``part``'s body as stored, stripped: a placeholder for a stored
    file's body, or "" for a part with parts."""
    payload = part.get_payload()
    return payload.strip() if isinstance(payload, str) else ""


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
