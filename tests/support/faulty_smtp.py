"""An SMTP server that misbehaves at random: aiosmtpd with faults drawn from a seeded
random generator, and a record of what it saw for each recipient.

The faults are those a real mail server produces and a client must survive:

- ``421`` instead of the greeting, or in answer to MAIL FROM (then it hangs up);
- ``451`` to RCPT TO, or to the end of DATA (the whole message received, then refused);
- the connection dropped when MAIL FROM arrives (nothing of the message was sent);
- the connection dropped after the whole message arrived, before the reply: the client
  cannot know whether it was delivered, and must not send it again by itself.

Greeting faults are drawn per connection, the others per transaction (at MAIL FROM), so
a client that reuses a connection (RSET between messages) meets them too. The seed fixes
the sequence of draws, not which message meets which draw: that depends on timing.

What arrived is recorded per envelope recipient (the chaos test gives each run its own
address): ``accepted`` (250 after DATA), ``dropped_after_data`` (the message was whole
when the connection was dropped: it may count as delivered), ``refused_after_data`` and
``refused_rcpt`` (451: explicitly not delivered).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from tests.support.smtp_server import free_port

GREETING_421 = "greeting_421"
MAIL_421 = "mail_421"
DROP_BEFORE_MAIL = "drop_before_mail"
RCPT_451 = "rcpt_451"
DATA_451 = "data_451"
DROP_AFTER_DATA = "drop_after_data"

ACCEPTED = "accepted"
DROPPED_AFTER_DATA = "dropped_after_data"
REFUSED_AFTER_DATA = "refused_after_data"
REFUSED_RCPT = "refused_rcpt"

#: Outcomes after which the recipient may have the message.
HANDED_OVER = (ACCEPTED, DROPPED_AFTER_DATA)


@dataclass(frozen=True)
class FaultRates:
    """The probability of each fault: greeting per connection, the rest per transaction."""

    greeting_421: float = 0.04
    mail_421: float = 0.04
    drop_before_mail: float = 0.04
    rcpt_451: float = 0.04
    data_451: float = 0.04
    drop_after_data: float = 0.03
    #: The longest pause before the greeting and before the reply to DATA (drawn
    #: between 0 and this), as a busy server takes: a client killed meanwhile has
    #: claimed its message but not sent it, or sent it without hearing the answer.
    reply_delay: float = 0.0

    def transaction_faults(self) -> list[tuple[str, float]]:
        return [
            (MAIL_421, self.mail_421),
            (DROP_BEFORE_MAIL, self.drop_before_mail),
            (RCPT_451, self.rcpt_451),
            (DATA_451, self.data_451),
            (DROP_AFTER_DATA, self.drop_after_data),
        ]


@dataclass
class Event:
    at: float
    recipient: str
    outcome: str
    subject: str = ""


@dataclass
class FaultLog:
    """What the server did and saw; read by the test from its own thread."""

    rates: FaultRates
    rng: random.Random
    faults: Counter = field(default_factory=Counter)
    events: list[Event] = field(default_factory=list)
    #: Clients connected right now: the chaos test strikes while one is.
    open_connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def draw_greeting(self) -> bool:
        with self.lock:
            hit = self.rng.random() < self.rates.greeting_421
            if hit:
                self.faults[GREETING_421] += 1
            return hit

    def draw_delay(self) -> float:
        with self.lock:
            return self.rng.uniform(0, self.rates.reply_delay) if self.rates.reply_delay else 0.0

    def draw_transaction(self) -> str | None:
        with self.lock:
            roll = self.rng.random()
            for fault, rate in self.rates.transaction_faults():
                if roll < rate:
                    self.faults[fault] += 1
                    return fault
                roll -= rate
            return None

    def record(self, recipients: list[str], outcome: str, subject: str = "") -> None:
        with self.lock:
            now = time.monotonic()
            self.events.extend(Event(now, r, outcome, subject) for r in recipients)

    def outcomes(self) -> dict[str, Counter]:
        """Per recipient, how many times each outcome happened."""
        with self.lock:
            seen: dict[str, Counter] = {}
            for event in self.events:
                seen.setdefault(event.recipient, Counter())[event.outcome] += 1
            return seen


class _FaultySMTP(SMTP):
    """aiosmtpd's server, able to answer the greeting with 421 and to hang up instead
    of replying (``push`` is where every reply goes out)."""

    def __init__(self, handler: _FaultHandler, **kwargs):
        super().__init__(handler, **kwargs)
        self.kiln_log = handler.log
        self.kiln_greeted = False
        #: The next reply is not sent: the connection is closed instead.
        self.kiln_hang_up = False
        #: The next reply is sent, then the connection is closed (a 421).
        self.kiln_close_after_reply = False
        #: The fault drawn for the current transaction.
        self.kiln_fault: str | None = None

    def connection_made(self, transport) -> None:
        with self.kiln_log.lock:
            self.kiln_log.open_connections += 1
        super().connection_made(transport)

    def connection_lost(self, error) -> None:
        with self.kiln_log.lock:
            self.kiln_log.open_connections -= 1
        super().connection_lost(error)

    async def push(self, status):
        if not self.kiln_greeted:
            self.kiln_greeted = True
            await asyncio.sleep(self.kiln_log.draw_delay())
            if self.kiln_log.draw_greeting():
                await super().push("421 4.3.2 Service not available, closing channel")
                self._close()
                return
        if self.kiln_hang_up:
            self._close()
            return
        await super().push(status)
        if self.kiln_close_after_reply:
            self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class _FaultHandler:
    log: FaultLog

    async def handle_MAIL(self, server: _FaultySMTP, session, envelope, address, mail_options):
        server.kiln_fault = self.log.draw_transaction()
        if server.kiln_fault == DROP_BEFORE_MAIL:
            server.kiln_hang_up = True
            return "250 OK"  # never sent
        if server.kiln_fault == MAIL_421:
            server.kiln_close_after_reply = True
            return "421 4.3.2 Too busy, closing channel"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: _FaultySMTP, session, envelope, address, rcpt_options):
        if server.kiln_fault == RCPT_451:
            self.log.record([address], REFUSED_RCPT)
            return "451 4.3.0 Recipient temporarily unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: _FaultySMTP, session, envelope):
        subject = _subject(envelope.content)
        delay = self.log.draw_delay()
        if server.kiln_fault == DATA_451:
            self.log.record(envelope.rcpt_tos, REFUSED_AFTER_DATA, subject)
            return "451 4.3.0 Temporary failure, try again later"
        if server.kiln_fault == DROP_AFTER_DATA:
            self.log.record(envelope.rcpt_tos, DROPPED_AFTER_DATA, subject)
            await asyncio.sleep(delay)
            server.kiln_hang_up = True
            return "250 OK"  # never sent
        # Recorded before the pause: the message is the server's from now on, even if
        # the client never hears the 250.
        self.log.record(envelope.rcpt_tos, ACCEPTED, subject)
        await asyncio.sleep(delay)
        return "250 OK: queued"


def _subject(content: bytes | str) -> str:
    raw = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    for line in raw.split("\r\n"):
        if not line:
            break
        if line.lower().startswith("subject:"):
            return line.split(":", 1)[1].strip()
    return ""


class _Controller(Controller):
    def factory(self):
        return _FaultySMTP(self.handler, **self.SMTP_kwargs)


class FaultySmtpServer:
    """A plain SMTP server (no TLS, no AUTH) on a free port that injects faults."""

    def __init__(self, seed: int, rates: FaultRates | None = None, host: str = "127.0.0.1"):
        self.log = FaultLog(rates or FaultRates(), random.Random(seed))
        self.host = host
        self.port = free_port()
        self.controller = _Controller(
            _FaultHandler(self.log),
            hostname=host,
            port=self.port,
            enable_SMTPUTF8=True,
            decode_data=False,
            ready_timeout=10,
        )

    def start(self) -> FaultySmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
