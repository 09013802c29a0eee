"""The Custom headers field of Send email: name/value pairs a message carries beside
the headers Kiln writes itself (docs/smtp.md, Custom headers).

A name is checked against RFC 5322's field-name syntax and against the headers Kiln
owns or a receiving server writes: setting one of those would let an app forge what the
message's own fields decide (its recipients, its MIME structure, the sandbox's list of
original recipients) or a signature or trace a receiver trusts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from datasources.errors import FieldError, quoted
from datasources.plugins.smtp.headers import header_safe

FIELD = "headers"
LABEL = "Custom headers"
MAX_HEADERS = 20
MAX_NAME = 76
#: With the name, a value written as typed fits a line of 998 characters.
MAX_VALUE = 900
#: RFC 5322 section 3.6.8: printable ASCII except the colon.
_FIELD_NAME = re.compile(r"[!-9;-~]+")
#: Compared lowercased: what the message's own fields write, what makes it MIME, what a
#: receiving server adds (trace, authentication results) and what signs it.
FORBIDDEN = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "return-path",
        "received",
        "received-spf",
        "authentication-results",
        "dkim-signature",
        "domainkey-signature",
        "delivered-to",
    }
)
#: The field of Send email that writes each header an app is likely to try here.
USE_INSTEAD = {
    "from": "From",
    "sender": "From",
    "reply-to": "Reply-To",
    "to": "To",
    "cc": "CC",
    "bcc": "BCC",
    "subject": "Subject",
}
#: Every Content-* header (MIME structure), Kiln's own X-Kiln-*, the Resent-* trace
#: block and ARC-* signatures.
FORBIDDEN_PREFIXES = ("content-", "x-kiln-", "resent-", "arc-")


@dataclass(frozen=True)
class CustomHeader:
    name: str
    value: str


def _refuse(message: str) -> FieldError:
    return FieldError(FIELD, f"{LABEL}: {message}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each given once. ``json.loads`` would keep the last
    of two equal keys: a second "List-Unsubscribe" would silently replace the first."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _refuse(f"{quoted(key)} is given twice.")
        seen.add(key)
    return dict(pairs)


def _pairs(value: Any) -> list[tuple[Any, Any]]:
    """The raw (name, value) pairs of an object, a list of ``{name, value}`` objects or
    JSON text holding either."""
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value, object_pairs_hook=_unique_keys)
        except FieldError:
            raise
        except ValueError as exc:
            raise _refuse(
                'not valid JSON: write an object {"Name": "value"} or a list of '
                f'{{"name": ..., "value": ...}} ({exc}).'
            ) from None
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list | tuple):
        pairs = []
        for index, item in enumerate(value, start=1):
            if not (isinstance(item, dict) and set(item) == {"name", "value"}):
                raise _refuse(f'item #{index} is not an object {{"name": ..., "value": ...}}.')
            pairs.append((item["name"], item["value"]))
    elif value is None:
        return []
    else:
        raise _refuse(
            f"must be an object or a list of name/value pairs, not {type(value).__name__}."
        )
    if len(pairs) > MAX_HEADERS:
        raise _refuse(f"{len(pairs)} headers, over the limit of {MAX_HEADERS}.")
    return pairs


def check_name(name: Any) -> str:
    """``name`` if an app may set a header of that name; else a FieldError naming it."""
    if isinstance(name, str) and len(name) > MAX_NAME:
        raise _refuse(f"the name {quoted(name, 20)} is {len(name):,} characters, over {MAX_NAME}.")
    if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
        raise _refuse(
            f"{quoted(name)} is not a header name (printable ASCII letters, digits and marks, "
            "without spaces or a colon)."
        )
    lower = name.lower()
    if lower in FORBIDDEN or lower.startswith(FORBIDDEN_PREFIXES):
        raise _refuse(_forbidden(name, lower))
    return name


def _forbidden(name: str, lower: str) -> str:
    """Why ``name`` is refused and what to do instead, in words a user of the editor can
    act on (no pointer to a file they cannot open)."""
    if lower in USE_INSTEAD:
        return f"{name} cannot be set here: use the {USE_INSTEAD[lower]} field."
    if lower.startswith("content-") or lower == "mime-version":
        return (
            f"{name} cannot be set here: Kiln writes it from the body, Body type and the "
            "files fields."
        )
    return f"{name} cannot be set here: Kiln or the receiving server writes it."


def _check_value(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _refuse(f"the value of {name} must be text, not {type(value).__name__}.")
    text = str(value)
    # Measured first: a refused value is never scanned, nor quoted whole.
    if len(text) > MAX_VALUE:
        raise _refuse(f"the value of {name} is {len(text):,} characters, over {MAX_VALUE}.")
    return header_safe(FIELD, f"{LABEL}: the value of {name}", text)


def read_custom_headers(value: Any) -> list[CustomHeader]:
    """The checked custom headers of a field's value; a name may be given once."""
    headers: list[CustomHeader] = []
    seen: set[str] = set()
    for raw_name, raw_value in _pairs(value):
        name = check_name(raw_name)
        if name.lower() in seen:
            raise _refuse(f"{name} is given twice.")
        seen.add(name.lower())
        headers.append(CustomHeader(name, _check_value(name, raw_value)))
    return headers
