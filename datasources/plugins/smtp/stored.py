"""The message a run sends, built once where the run is created and sent as stored.

The web side checks every field and builds the message (``build_email``) before the run
is stored; the worker sends those bytes as they are, without building and checking the
message again. Attachments are not in the stored bytes: each attachment's body is a
placeholder, and the worker streams the file's base64 text in its place, a piece at a
time, so that sending a 25 MB file holds neither its base64 text nor the whole message
in memory. The Date and Message-ID are those of the run's creation: a retry sends the
same message, which a receiver can recognise as the same one.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from datasources.errors import PluginError
from datasources.plugins.smtp.message import Email

#: Bytes of a file encoded per piece: 16,384 base64 lines of 76 characters.
PIECE = 57 * 16384
#: The version of the stored form; a run stored in another one is built from its fields.
FORMAT = 1


@dataclass(frozen=True)
class Envelope:
    """What the SMTP transaction needs beside the message bytes."""

    sender: str
    recipients: list[str]
    smtputf8: bool
    message_id: str
    placeholders: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "sender": self.sender,
            "recipients": self.recipients,
            "smtputf8": self.smtputf8,
            "message_id": self.message_id,
            "placeholders": self.placeholders,
        }

    @classmethod
    def from_json(cls, meta: dict) -> Envelope | None:
        """The envelope stored with a run; None for a run stored without one."""
        if not meta or meta.get("format") != FORMAT:
            return None
        return cls(
            sender=meta["sender"],
            recipients=list(meta["recipients"]),
            smtputf8=bool(meta["smtputf8"]),
            message_id=meta["message_id"],
            placeholders=list(meta["placeholders"]),
        )


def stored_form(email: Email) -> tuple[bytes, Envelope]:
    """The bytes to store of an email built with placeholders, and its envelope."""
    envelope = Envelope(
        sender=email.sender,
        recipients=email.recipients,
        smtputf8=email.smtputf8,
        message_id=str(email.message["Message-ID"]),
        placeholders=email.placeholders,
    )
    return email.as_bytes(), envelope


def pieces_of(file: Any) -> Iterable[bytes]:
    """A file's bytes in pieces of ``PIECE`` bytes: through its ``chunks`` method when
    it has one (a run's stored file read from the database a piece at a time), else by
    slicing its ``data``."""
    chunks = getattr(file, "chunks", None)
    if chunks is not None:
        return chunks(PIECE)
    view = memoryview(file.data)
    return (view[start : start + PIECE] for start in range(0, len(view), PIECE))


def _base64_lines(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """Base64 in lines of 76 characters joined by CRLF, with no CRLF after the last
    (the stored message has it): the lines of the whole file encoded at once, whatever
    the sizes of the pieces (each is encoded up to a multiple of 57 bytes)."""
    carry: bytes = b""
    pending = b""
    for piece in pieces:
        data = carry + bytes(piece) if carry else piece
        cut = len(data) - len(data) % 57
        carry = bytes(data[cut:])
        if cut:
            if pending:
                yield pending + b"\r\n"
            pending = _encode(data[:cut])
    if carry:
        if pending:
            yield pending + b"\r\n"
        pending = _encode(carry)
    if pending:
        yield pending


def _encode(data) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")[:-2]


def message_pieces(message: bytes, envelope: Envelope, files: Sequence[Any]) -> Iterator[bytes]:
    """The whole message: the stored bytes with each placeholder replaced by its file's
    base64 text, in pieces."""
    if len(files) != len(envelope.placeholders):
        raise PluginError(
            f"This run has {len(files)} stored file(s) for "
            f"{len(envelope.placeholders)} attachment(s); it cannot be sent as stored."
        )
    rest = message
    for placeholder, file in zip(envelope.placeholders, files, strict=True):
        before, found, rest = rest.partition(placeholder.encode("ascii"))
        if not found:
            raise PluginError("The stored message lacks the place of an attachment.")
        yield before
        yield from _base64_lines(pieces_of(file))
    yield rest


def message_size(message: bytes, envelope: Envelope, files: Sequence[Any]) -> int:
    """The bytes ``message_pieces`` yields, from the files' sizes alone (none is read):
    the size an SMTP client declares (RFC 1870) before it sends the message."""
    size = len(message) - sum(len(p.encode("ascii")) for p in envelope.placeholders)
    return size + sum(_base64_size(file.size) for file in files)


def _base64_size(size: int) -> int:
    """Bytes of ``_base64_lines`` for ``size`` bytes: lines of 76, CRLF between them."""
    characters = -(-size // 3) * 4
    lines = -(-characters // 76)
    return characters + 2 * max(lines - 1, 0)
