"""The dev mailbox's SMTP server: accepts any message and stores it as a MailboxMessage.

No auth, no TLS, no relaying: it is meant to listen on localhost (or a private network)
while you build, like Mailpit or MailHog.
"""

from __future__ import annotations

import logging

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from asgiref.sync import sync_to_async
from django.db import connection

from devmailbox.models import MailboxMessage

log = logging.getLogger(__name__)

MAX_MESSAGE_SIZE = 50 * 1024 * 1024


def _store(mail_from: str, rcpt_tos: list[str], raw: bytes) -> MailboxMessage:
    # This thread is outside Django's request cycle, which would otherwise manage its
    # connection: one connection per message, closed after it, so that the server holds no
    # database session in the hours between messages (a session held there also kept
    # PostgreSQL from dropping the test database).
    try:
        return MailboxMessage.receive(mail_from, rcpt_tos, raw)
    finally:
        connection.close()


class MailboxHandler:
    """aiosmtpd handler that keeps every message it is given."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # original_content is the bytes exactly as sent; content can only differ when
        # decode_data is on, which it is not, but either is the message.
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        try:
            # The handler runs in the server's event loop; the ORM must not.
            message = await sync_to_async(_store)(
                envelope.mail_from or "", list(envelope.rcpt_tos), raw
            )
        except Exception:
            log.exception("dev mailbox could not store a message from %s", envelope.mail_from)
            # 4xx so the sender keeps the message and retries, as with a real server.
            return "451 4.3.0 Could not store the message"
        log.info(
            "dev mailbox received #%s from %s to %s: %s",
            message.pk,
            message.mail_from or "<>",
            ", ".join(message.rcpt_tos),
            message.subject,
        )
        return "250 Message accepted for delivery"


def start(host: str, port: int) -> Controller:
    """Start the SMTP server in a background thread; call ``.stop()`` on the result."""
    controller = Controller(
        MailboxHandler(),
        hostname=host,
        port=port,
        # A fixed greeting name: the default, socket.getfqdn(), can stall on slow DNS.
        server_hostname="kiln-devmailbox",
        ident="Kiln dev mailbox",
        data_size_limit=MAX_MESSAGE_SIZE,
        enable_SMTPUTF8=True,
        decode_data=False,
    )
    controller.start()
    return controller
