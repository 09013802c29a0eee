"""A real SMTP server for tests: aiosmtpd on a free port, optionally with STARTTLS,
implicit TLS and AUTH, collecting what it receives."""

from __future__ import annotations

import email
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

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


@dataclass
class Handler:
    """Stores messages; refuses listed recipients; answers DATA from a script."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)
    transactions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Offer PIPELINING in the EHLO reply (aiosmtpd reads pipelined commands in order).
    pipelining: bool = False

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.transactions += 1
            reply = self.data_replies.pop(0) if self.data_replies else "250 OK: queued"
            if reply.startswith("250"):
                self.received.append(
                    Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
                )
        return reply


class SmtpServer:
    def __init__(
        self,
        *,
        security: str = Security.NONE,
        users: dict[str, str] | None = None,
        certs: TestCertificates | None = None,
        offer_starttls: bool = True,
        host: str = "127.0.0.1",
    ):
        self.handler = Handler()
        self.host = host
        self.port = free_port()
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
        controller_kwargs = {}
        if security == Security.SSL:
            controller_kwargs["ssl_context"] = tls_context
            controller_kwargs["server_hostname"] = "localhost"
        self.controller = Controller(
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
