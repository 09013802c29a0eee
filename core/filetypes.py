"""The content type of a file someone else chose (an uploader, a binding): derived from
its bytes and its name, never taken from what the browser or the binding declared."""

from __future__ import annotations

import mimetypes

import filetype

SAFE_DEFAULT = "application/octet-stream"

#: Types a mail client or browser may render or run in place: sent and served as opaque
#: bytes to download, whatever the file claims to be.
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "text/ecmascript",
        "application/x-sh",
        "text/x-sh",
        "application/x-shockwave-flash",
        "application/hta",
        "application/x-msdownload",
        "application/vnd.microsoft.portable-executable",
        "text/vbscript",
        "text/x-python",
        "application/x-python-code",
    }
)
#: The file's first bytes suffice for every signature the sniffer knows.
SNIFF_BYTES = 8192


def sniffed_type(name: str, data: bytes) -> str:
    """The type the bytes show, else the one the name's extension gives, else
    application/octet-stream; an active type (``ACTIVE_TYPES``) is application/octet-stream.

    Bytes win over the name: a PNG named report.pdf is image/png; text has no signature,
    so a text file's type comes from its name.
    """
    kind = filetype.guess(data[:SNIFF_BYTES]) if data else None
    guessed = kind.mime if kind is not None else mimetypes.guess_type(name)[0]
    guessed = (guessed or SAFE_DEFAULT).lower()
    return SAFE_DEFAULT if is_active(guessed) else guessed


def is_active(content_type: str) -> bool:
    base = content_type.split(";", 1)[0].strip().lower()
    return base in ACTIVE_TYPES or base.endswith(("+xml", "javascript", "ecmascript"))
