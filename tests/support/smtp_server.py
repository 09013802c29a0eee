"""A real SMTP server for tests: aiosmtpd on a free port, optionally with STARTTLS,
implicit TLS and AUTH, collecting what it receives; on demand it misbehaves as real
servers and networks do (a 421 greeting, a connection dropped before MAIL FROM or after
the message, a slow answer to the message)."""

from __future__ import annotations

import asyncio
import email
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from datasources.plugins.smtp.config import Auth, Security, SmtpSettings
from tests.support.certs import TestCertificates


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)


#: Faults a connection can be given (``SmtpServer.fault``), one per connection, in order.
GREETING_421 = "greeting_421"  # greets with 421 and closes: nothing was started
DROP_BEFORE_MAIL = "drop_before_mail"  # closes when the client sends MAIL FROM
DROP_AFTER_DATA = "drop_after_data"  # keeps the message, closes before the reply
FAULTS = (GREETING_421, DROP_BEFORE_MAIL, DROP_AFTER_DATA)


@dataclass
class Handler:
    """Stores messages; refuses listed recipients; answers DATA from a script, after
    ``data_delay`` seconds. ``transactions`` counts messages whose data arrived;
    ``received`` holds those the server kept (answered 250, or dropped after DATA)."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    data_delay: float = 0.0
    transactions: int = 0
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Offer PIPELINING in the EHLO reply (aiosmtpd reads pipelined commands in order).
    pipelining: bool = False
    #: Keep every message as soon as its data arrived, before answering it after
    #: ``data_delay`` (a server that queues first): one whose client dies meanwhile is
    #: kept all the same, the case of a run that ends unknown. No scripted replies.
    keep_when_client_leaves: bool = False
    #: When the latest message's data arrived (time.monotonic()).
    last_data_at: float = 0.0
    #: Greylisting (RFC 6647): a (sender, recipient) pair is answered 451 at RCPT until
    #: this many seconds after it was first seen; 0 is off. ``greylisted`` counts the 451s.
    greylist_seconds: float = 0.0
    greylist_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    greylisted: int = 0
    #: QUIT commands received (a polite client ends with one, refused or not).
    quits: int = 0

    async def handle_QUIT(self, server, session, envelope):
        with self.lock:
            self.quits += 1
        return "221 Bye"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    def next_fault(self) -> str | None:
        with self.lock:
            self.connections += 1
            return self.faults.pop(0) if self.faults else None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        if self.greylist_seconds and not self._passes_greylist(envelope.mail_from, address):
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def _passes_greylist(self, sender: str, recipient: str) -> bool:
        now = time.monotonic()
        with self.lock:
            first = self.greylist_seen.setdefault((sender, recipient), now)
            if now - first >= self.greylist_seconds:
                return True
            self.greylisted += 1
            return False

    async def handle_DATA(self, server, session, envelope):
        message = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        with self.lock:
            self.transactions += 1
            self.last_data_at = time.monotonic()
        if getattr(server, "kiln_fault", None) == DROP_AFTER_DATA:
            with self.lock:
                self.received.append(message)
            server.transport.abort()
            return "250 OK: never heard"
        if self.keep_when_client_leaves:
            # Queued before it answers: kept even if the client dies while it waits.
            with self.lock:
                self.received.append(message)
            await asyncio.sleep(self.data_delay)
            return "250 OK: queued"
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
            if server.transport is None or server.transport.is_closing():
                return "421 The client left"  # it never learns: nothing is kept
        with self.lock:
            reply = self.data_replies.pop(0) if self.data_replies else "250 OK: queued"
            if reply.startswith("250"):
                self.received.append(message)
        return reply


class _FaultySMTP(SMTP):
    """aiosmtpd's server with the faults of ``Handler.faults``, one per connection."""

    kiln_fault: str | None = None
    _kiln_greeted = False

    async def push(self, status):
        if not self._kiln_greeted:
            self._kiln_greeted = True
            self.kiln_fault = self.event_handler.next_fault()
            if self.kiln_fault == GREETING_421:
                await super().push("421 4.3.2 Service not available, closing channel")
                self.transport.close()
                return
        await super().push(status)

    async def smtp_MAIL(self, arg):
        if self.kiln_fault == DROP_BEFORE_MAIL:
            self.transport.abort()
            return
        await super().smtp_MAIL(arg)


class _Controller(Controller):
    def factory(self):
        return _FaultySMTP(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    def __init__(
        self,
        *,
        security: str = Security.NONE,
        users: dict[str, str] | None = None,
        certs: TestCertificates | None = None,
        offer_starttls: bool = True,
        host: str = "127.0.0.1",
        port: int | None = None,
        smtp_options: dict | None = None,
        handler: Handler | None = None,
    ):
        """``smtp_options`` go to aiosmtpd's SMTP as they are (``auth_required``,
        ``require_starttls``, ...): a server's policies, as real servers have them. A
        ``handler`` (a Handler subclass) may add AUTH mechanisms (``auth_<NAME>`` methods)."""
        self.handler = handler or Handler()
        self.host = host
        self.port = port or free_port()
        self.security = security
        self.users = users or {}
        kwargs: dict = {"enable_SMTPUTF8": True, "decode_data": False}
        tls_context = None
        if certs is not None:
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_context.load_cert_chain(certs.cert_file, certs.key_file)
        if security == Security.STARTTLS and offer_starttls:
            kwargs["tls_context"] = tls_context
        if self.users:
            kwargs["authenticator"] = self._authenticate
            # aiosmtpd does not count implicit TLS as TLS for this check.
            kwargs["auth_require_tls"] = security == Security.STARTTLS
        kwargs.update(smtp_options or {})
        controller_kwargs = {}
        if security == Security.SSL:
            controller_kwargs["ssl_context"] = tls_context
            controller_kwargs["server_hostname"] = "localhost"
        self.controller = _Controller(
            self.handler,
            hostname=host,
            port=self.port,
            **kwargs,
            ready_timeout=10,
            **controller_kwargs,
        )
        self.auth_attempts: list[tuple[str, str]] = []

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        password = auth_data.password.decode()
        self.auth_attempts.append((login, mechanism))
        ok = self.users.get(login) == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def refuse(self, address: str, reply: str = "550 5.1.1 No such user here") -> None:
        self.handler.refuse[address] = reply

    def reply_to_data(self, *replies: str) -> None:
        self.handler.data_replies.extend(replies)

    def fault(self, *faults: str) -> None:
        """The next connections misbehave, one fault each, in order (``FAULTS``)."""
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {FAULTS}")
        with self.handler.lock:
            self.handler.faults.extend(faults)

    def greylist(self, seconds: float) -> None:
        """Refuse each new sender and recipient pair with 451 for ``seconds`` after its
        first try, then accept it, as a greylisting server does (for minutes)."""
        self.handler.greylist_seconds = seconds

    def delay_data(self, seconds: float) -> None:
        """Answer each message ``seconds`` after its data arrived (a slow server)."""
        self.handler.data_delay = seconds

    def wait_for(self, count: int = 1, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received

    def settings(self, **overrides) -> SmtpSettings:
        """Datasource settings that reach this server."""
        values = {
            "host": "localhost" if self.security != Security.NONE else self.host,
            "port": self.port,
            "security": self.security,
            "auth": Auth.PASSWORD if self.users else Auth.NONE,
            "username": next(iter(self.users), ""),
            "password": next(iter(self.users.values()), ""),
            "timeout": 5.0,
            "verify_certificate": True,
        }
        values.update(overrides)
        return SmtpSettings(**values)


class SilentServer:
    """Accepts TCP connections and never says anything: for timeouts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()
