"""Sandbox mode of an SMTP datasource: every email still goes through the whole
pipeline (bindings, checks, the outbox), but not to its recipients. "Dev mailbox" stores
it in the built-in dev mailbox (devmailbox.MailboxMessage, written from the worker: no
SMTP server needed); "catch-all" sends it through the datasource's own SMTP server to
one address only (RCPT TO that address alone).

The message's To and Cc headers stay as written, so it reads as the real one would; a
header ``X-Kiln-Sandbox-Original-Recipients`` lists every original envelope recipient,
Bcc included. That header is added only to the sandboxed copy, which no original
recipient ever gets, so a Bcc is never shown to the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.db import DatabaseError

from datasources.errors import FieldError, TransientError
from datasources.plugins.smtp.message import parse_addresses

HEADER = "X-Kiln-Sandbox-Original-Recipients"


class Sandbox:
    OFF = "off"
    DEV_MAILBOX = "devmailbox"
    CATCH_ALL = "catchall"
    CHOICES = [
        (OFF, "Off: emails go to their recipients"),
        (DEV_MAILBOX, "Dev mailbox: every email is kept in Kiln's dev mailbox"),
        (CATCH_ALL, "Catch-all address: every email goes to one address"),
    ]
    MODES = frozenset({DEV_MAILBOX, CATCH_ALL})


#: Where a sandboxed email is said to go, for the dev mailbox.
DEV_MAILBOX_LABEL = "dev mailbox"


def note(mode: str, address: str = "") -> str:
    """The banner a sandboxed datasource shows; "" when sandbox mode is off."""
    if mode == Sandbox.DEV_MAILBOX:
        return "Sandbox mode: every email goes to the dev mailbox, not to its recipients."
    if mode == Sandbox.CATCH_ALL:
        return f"Sandbox mode: every email goes to {address}, not to its recipients."
    return ""


def check_address(value: str) -> str:
    """The catch-all address, checked as a recipient is; ``FieldError`` naming
    ``sandbox_address``."""
    try:
        addresses = parse_addresses("sandbox_address", value, single=True)
    except FieldError as exc:
        message = exc.message.replace("sandbox_address", "Catch-all address", 1)
        raise FieldError("sandbox_address", message) from None
    if not addresses:
        raise FieldError("sandbox_address", "Catch-all address is required in catch-all mode.")
    return addresses[0].addr_spec


def check_dev_mailbox() -> None:
    if not django_settings.KILN_DEVMAILBOX:
        raise FieldError(
            "sandbox",
            "The dev mailbox is switched off on this server (KILN_DEVMAILBOX); "
            "choose a catch-all address instead.",
        )


@dataclass(frozen=True)
class Plan:
    """Where one run's email goes instead of to its recipients."""

    mode: str
    original_recipients: list[str]
    #: The catch-all address, or "dev mailbox".
    delivered_to: str

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "original_recipients": self.original_recipients,
            "delivered_to": self.delivered_to,
        }


def plan(mode: str, address: str, recipients: list[str]) -> Plan | None:
    """The plan for a datasource in ``mode``; None when sandbox mode is off."""
    if mode not in Sandbox.MODES:
        return None
    delivered_to = address if mode == Sandbox.CATCH_ALL else DEV_MAILBOX_LABEL
    return Plan(mode, list(recipients), delivered_to)


def plan_for_send(mode: str, address: str, meta: dict, recipients: list[str]) -> Plan | None:
    """The plan when the run is sent: the datasource's mode now, or, when it was turned
    off since, the one the run was created under (a run made to try an app never
    reaches real people later)."""
    now = plan(mode, address, recipients)
    if now is not None:
        return now
    stored = (meta or {}).get("sandbox") or {}
    if stored.get("mode") not in Sandbox.MODES:
        return None
    return Plan(stored["mode"], list(recipients), str(stored.get("delivered_to") or ""))


def header_line(recipients: list[str], smtputf8: bool) -> bytes:
    """The header naming the original recipients, folded between addresses so that no
    line passes 78 characters (the first address stays on the header's own line: a
    value that begins with a fold reads back with a leading space)."""
    name = f"{HEADER}:"
    lines, current = [], name
    for index, address in enumerate(recipients):
        piece = f" {address}" + ("," if index < len(recipients) - 1 else "")
        if current != name and len(current) + len(piece) > 78:
            lines.append(current)
            current = piece
        else:
            current += piece
    lines.append(current)
    # Addresses were checked when the run was made: no CR, LF or NUL can be in them.
    return ("\r\n".join(lines) + "\r\n").encode("utf-8" if smtputf8 else "ascii")


def with_header(pieces: Iterator[bytes], line: bytes) -> Iterator[bytes]:
    """The message with ``line`` as its first header (the header block comes first, so
    prepending keeps the stored bytes otherwise untouched)."""
    yield line
    yield from pieces


def dev_mailbox_store(sender: str, recipients: list[str], pieces: Iterator[bytes]):
    """Keep the sandboxed message in the dev mailbox, as its SMTP server would (which
    answers a 451 when it cannot store one: retried the same way here)."""
    # Imported here: the plugin's settings are read (by tools and benches too) before
    # Django's apps are ready, and only a send needs the model.
    from devmailbox.models import MailboxMessage

    check_dev_mailbox()
    try:
        return MailboxMessage.receive(sender, recipients, b"".join(pieces))
    except DatabaseError as exc:
        raise TransientError(f"The dev mailbox could not store the email ({exc}).") from exc
