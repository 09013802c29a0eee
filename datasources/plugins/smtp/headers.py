"""Headers with free text, written so that a reader parses back exactly what was given.

Python's email package folds a long header of mixed scripts into encoded words and, in
doing so, can drop a space between two of them or add one (about one random mixed-script
subject in fifteen read back differently); its parser also decodes text that only looks
like an encoded word (``=?utf-8?q?x?=``), even inside a quoted display name, and adds a
space between adjacent encoded words of a display name, against RFC 2047 section 6.2.

So Kiln writes these headers itself. A value stays as typed when it is printable ASCII
that no reader can take for anything else; otherwise it is a run of UTF-8 base64 encoded
words that carry every character, spaces included, folded between words (whitespace
between encoded words is not part of the text). A display name is one encoded word,
however long, because of the parser's added space. The header objects stand in
``EmailMessage`` like its own ones: a ``name``, a ``fold(policy=)`` and, as text, the
decoded value.

``header_safe`` is the check every such value passes first: written as one header line,
it must stay one line, however a reader decodes it.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections.abc import Iterable, Sequence
from email.headerregistry import Address

from datasources.errors import FieldError, quoted

#: Everything that ends a line somewhere: CR, LF and NUL, the vertical tab and form feed,
#: NEL and the Unicode line and paragraph separators (str.splitlines() breaks on all of
#: them, and so may a mail client or a library that re-folds the header).
_FORBIDDEN = re.compile("[\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_FORBIDDEN_TEXT = "line breaks, NUL or other line-ending characters"
#: RFC 2047 encoded words: the email package decodes them when it parses a header, so
#: what they decode to is checked too.
_ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([qQbB])\?([^?\s]*)\?=")
#: Lines are folded to this length where the text allows (RFC 5322 section 2.1.1).
LINE = 78
#: The longest a line may ever be (RFC 5322 section 2.1.1).
HARD_LINE = 998
_EW_START, _EW_END = "=?utf-8?b?", "?="
_EW_OVERHEAD = len(_EW_START) + len(_EW_END)
#: Anything a parser could read as an encoded word, valid or not.
_LOOKS_ENCODED = re.compile(r"=\?.*\?=", re.S)
#: Printable ASCII, with spaces only between other characters.
_PLAIN = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
#: A display name that needs no quotes: atoms separated by single spaces.
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _is_plain(text: str) -> bool:
    return bool(_PLAIN.fullmatch(text)) and not _LOOKS_ENCODED.search(text)


def encoded_word(text: str) -> str:
    """``text`` as one UTF-8 base64 encoded word (RFC 2047)."""
    return _EW_START + base64.b64encode(text.encode("utf-8")).decode("ascii") + _EW_END


def _ew_length(text: str) -> int:
    return _EW_OVERHEAD + 4 * -(-len(text.encode("utf-8")) // 3)


def _encoded_words(text: str, first: int) -> list[str]:
    """``text`` as encoded words, each whole characters and as long as its line allows:
    ``first`` characters for the first line's word, ``LINE - 1`` for the others."""
    words: list[str] = []
    room, start = first, 0
    while start < len(text):
        end = start + 1  # at least one character, however narrow the room
        while end < len(text) and _ew_length(text[start : end + 1]) <= room:
            end += 1
        words.append(encoded_word(text[start:end]))
        room, start = LINE - 1, end
    return words


def _plain_tokens(text: str) -> list[str]:
    """``text`` cut before each run of spaces: folding there and unfolding gives it back."""
    return re.findall(r" *[^ ]+", text)


def _fold_tokens(name: str, tokens: Sequence[str], linesep: str, *, spaced: bool) -> str:
    """``name: tokens`` folded before a token where the line would pass ``LINE``.
    ``spaced`` tokens carry their own leading spaces (plain text); others are joined by
    one space, which folding turns into the line break's whitespace."""
    lines: list[str] = []
    line = f"{name}:"
    for index, token in enumerate(tokens):
        piece = token if spaced and index else f" {token}"
        if index and len(line) + len(piece) > LINE:
            lines.append(line)
            line = piece
        else:
            line += piece
    lines.append(line)
    return linesep.join(lines) + linesep


def _decoded_words(value: str) -> str:
    """``value`` with each RFC 2047 encoded word replaced by what it decodes to."""

    def decode(match: re.Match) -> str:
        charset, encoding, text = match.groups()
        try:
            if encoding in "bB":
                raw = base64.b64decode(text + "=" * (-len(text) % 4))
            else:
                raw = quopri.decodestring(text.encode("ascii", "replace"), header=True)
        except (binascii.Error, ValueError):
            return ""
        try:
            return raw.decode(charset.split("*", 1)[0] or "ascii", "replace")
        except LookupError:
            return raw.decode("latin-1")

    return _ENCODED_WORD.sub(decode, value)


def header_safe(field: str, label: str, value: str) -> str:
    """``value`` if written as one header line it stays one line; else a FieldError on
    ``field``, whose label the message names."""
    if found := _FORBIDDEN.search(value):
        raise FieldError(
            field,
            f"{label} must not contain {_FORBIDDEN_TEXT} (one is character "
            f"{found.start() + 1:,}): {quoted(value)}",
        )
    if "=?" in value and _FORBIDDEN.search(_decoded_words(value)):
        raise FieldError(
            field,
            f"{label} has an encoded word (=?...?=) that decodes to a line break: {quoted(value)}",
        )
    return value


class _KilnHeader(str):
    """A header value Kiln encoded itself: as text, the decoded value."""

    name: str

    def __new__(cls, name: str, text: str):
        header = super().__new__(cls, text)
        header.name = name
        return header

    @property
    def defects(self) -> tuple:
        return ()


class TextHeader(_KilnHeader):
    """An unstructured header (Subject, a custom header) holding ``text`` exactly."""

    def fold(self, *, policy) -> str:
        text = str(self)
        if not text:
            return f"{self.name}:{policy.linesep}"
        tokens = _plain_tokens(text)
        # A word too long to fold runs past 78 characters, as RFC 5322 allows, up to 998.
        if _is_plain(text) and len(self.name) + 2 + max(map(len, tokens)) <= HARD_LINE:
            return _fold_tokens(self.name, tokens, policy.linesep, spaced=True)
        words = _encoded_words(text, LINE - len(self.name) - 2)
        return _fold_tokens(self.name, words, policy.linesep, spaced=False)


def display_name_token(name: str) -> str:
    """A display name as written: as typed, quoted, or one encoded word."""
    if _ATOMS.fullmatch(name) and not _LOOKS_ENCODED.search(name):
        return name
    if _is_plain(name):
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return encoded_word(name)


class AddressHeader(_KilnHeader):
    """An address list header (From, To, Cc, Reply-To) whose display names read back
    exactly as given."""

    addresses: tuple[Address, ...]

    def __new__(cls, name: str, addresses: Iterable[Address]):
        listed = tuple(addresses)
        header = super().__new__(cls, name, ", ".join(str(a) for a in listed))
        header.addresses = listed
        return header

    def fold(self, *, policy) -> str:
        tokens: list[str] = []
        for index, address in enumerate(self.addresses):
            comma = "," if index < len(self.addresses) - 1 else ""
            if address.display_name:
                tokens += [
                    display_name_token(address.display_name),
                    f"<{address.addr_spec}>{comma}",
                ]
            else:
                tokens.append(f"{address.addr_spec}{comma}")
        return _fold_tokens(self.name, tokens, policy.linesep, spaced=False)
