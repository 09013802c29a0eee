"""Connections to an SMTP server: TLS, authentication, delivery, and errors a person
can act on.

Every connection goes to an address checked by ``guard.resolve``; TLS still verifies
the host name the user typed.
"""

from __future__ import annotations

import base64
import hmac
import os
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import ip_address

from django.conf import settings as django_settings

from datasources.errors import DeliveryUnknown, FieldError, PluginError, TransientError
from datasources.plugins.smtp import oauth
from datasources.plugins.smtp.config import Auth, Security, SmtpSettings
from datasources.plugins.smtp.guard import resolve
from datasources.plugins.smtp.trust import check_pin

_LINE_DOT = re.compile(rb"\n\.")
#: Challenges answered in one AUTH before giving up on a server that keeps asking.
_MAX_CHALLENGES = 5
#: A 530 whose text says this wants TLS first (RFC 3207), not authentication (RFC 4954).
_TLS_FIRST = re.compile(r"starttls|\btls\b|encrypt", re.IGNORECASE)
_GREETING = "waiting for the server's greeting"
#: Seconds a server has to answer the QUIT after a refusal.
QUIT_SECONDS = 2.0
#: Bytes of a message written to the socket at once.
SEND_BUFFER = 256 * 1024


@dataclass
class _Progress:
    """Where a conversation is, so that a timeout or a disconnect can say so."""

    stage: str = "connecting"
    handed_over: bool = False
    #: The datasource's authentication, which a 530's hint depends on.
    auth: str = Auth.NONE
    #: The server took DATA (354) and waits for the message, which is not coming.
    in_data: bool = False


def _base64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


class _PinnedSMTP(smtplib.SMTP):
    """Connects to a checked address while keeping the host name for TLS."""

    kiln_address: str = ""
    kiln_progress: _Progress
    #: What the client waits for once the TCP connection is made.
    kiln_connected_stage = _GREETING

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((self.kiln_address, port), timeout, self.source_address)
        self.kiln_progress.stage = self.kiln_connected_stage
        return sock

    def auth(self, mechanism, authobject, *, initial_response_ok=True):
        """smtplib's ``auth``, with each response written in UTF-8 rather than ASCII:
        a username or password with a character such as "ä" is sent as its UTF-8 bytes
        (RFC 4616 for PLAIN; what Exim, Postfix and Dovecot compare) instead of
        raising UnicodeEncodeError before anything reaches the server."""
        mechanism = mechanism.upper()
        initial = authobject() if initial_response_ok else None
        # smtplib's auth_login tells the username's turn from the password's by this
        # count, the initial response included.
        self._auth_challenge_count = 0 if initial is None else 1
        if initial is not None:
            code, reply = self.docmd("AUTH", f"{mechanism} {_base64(initial)}")
        else:
            code, reply = self.docmd("AUTH", mechanism)
        while code == 334:
            self._auth_challenge_count += 1
            if self._auth_challenge_count > _MAX_CHALLENGES:
                raise smtplib.SMTPException(f"AUTH {mechanism} never ends: {code} {reply!r}")
            code, reply = self.docmd(_base64(authobject(base64.decodebytes(reply))))
        if code in (235, 503):
            return code, reply
        raise smtplib.SMTPAuthenticationError(code, reply)

    def auth_cram_md5(self, challenge=None):
        """smtplib's, keyed with the password's UTF-8 bytes (it takes ASCII only)."""
        if challenge is None:
            return None
        digest = hmac.HMAC(self.password.encode("utf-8"), challenge, "md5").hexdigest()
        return f"{self.user} {digest}"


class _PinnedSMTPSSL(smtplib.SMTP_SSL, _PinnedSMTP):
    # SMTP_SSL connects through _PinnedSMTP._get_socket, then does the handshake.
    kiln_connected_stage = "negotiating TLS"

    def _get_socket(self, host, port, timeout):
        sock = super()._get_socket(host, port, timeout)
        self.kiln_progress.stage = _GREETING
        return sock


def tls_context(s: SmtpSettings) -> ssl.SSLContext:
    """The context for one datasource's TLS: the system's authorities, plus the
    datasource's own CA certificate (PEM) if it gives one."""
    # Loading the CA store takes tens of milliseconds: keep one context per setting
    # (and per CA location, which tests and deployments set through the environment).
    return _tls_context(
        s.verify_certificate,
        s.ca_certificate,
        os.environ.get("SSL_CERT_FILE"),
        os.environ.get("SSL_CERT_DIR"),
    )


#: Bounded: a PEM is at most trust.MAX_CA_BYTES, so the cache holds at most 2 MB of them.
@lru_cache(maxsize=32)
def _tls_context(
    verify: bool, ca_certificate: str, _cafile: str | None, _capath: str | None
) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_certificate:
        context.load_verify_locations(cadata=ca_certificate)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _reply(text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(text.split())


def _response_error(progress: _Progress, code: int, text: bytes | str) -> PluginError:
    if code == 530:
        return _requirement(code, text, progress.auth)
    message = f"The server refused while {progress.stage}: {code} {_reply(text)}"
    if 400 <= code < 500:
        return TransientError(message, code="smtp_temporary")
    return PluginError(message, code="smtp_refused")


#: What a 530 "authentication required" asks to change, by the datasource's ``auth``:
#: the field, and the advice. Signed in already, the server does not accept that
#: account for sending (Microsoft 365 answers so when SMTP AUTH is off for a mailbox).
_SIGN_IN_HINTS = {
    Auth.NONE: (
        "auth",
        "Choose “Username and password” (or OAuth2) as the authentication and enter "
        "the account's credentials.",
    ),
    Auth.PASSWORD: (
        "username",
        "Kiln signed in with the username and password: check them, and that the server "
        "lets this account send mail (SMTP AUTH may be turned off for it).",
    ),
    Auth.OAUTH2: (
        "refresh_token",
        "Kiln signed in with OAuth2: check that the token was granted for this username's "
        "mailbox with the SMTP scope, and connect that account again if not.",
    ),
}


def _requirement(code: int, text: bytes | str, auth: str) -> PluginError:
    """A 530: the server takes no mail before authentication (RFC 4954), or before
    STARTTLS (RFC 3207), whatever command it answers. Reported on the setting to change
    (which depends on how Kiln signed in), not on the sender or the recipients it
    happened to answer."""
    reply = f"{code} {_reply(text)}"
    if _TLS_FIRST.search(reply):
        return PluginError(
            f"The server takes mail only over an encrypted connection ({reply}). "
            "Choose STARTTLS (or SSL/TLS, on the server's TLS port) as the connection "
            "security.",
            field="security",
            code="tls_required",
        )
    field, hint = _SIGN_IN_HINTS.get(auth, _SIGN_IN_HINTS[Auth.NONE])
    return PluginError(
        f"The server takes mail only from authenticated senders ({reply}). {hint}",
        field=field,
        code="auth_required",
    )


def _translate(exc: BaseException, s: SmtpSettings, progress: _Progress) -> PluginError:
    where = f"{s.host}:{s.port}"
    if progress.handed_over and isinstance(exc, (OSError, smtplib.SMTPException)):
        return DeliveryUnknown(
            f"The connection to {where} was lost after the message was handed over "
            f"({type(exc).__name__}); it may or may not have been delivered."
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        message = f"Authentication refused by the server: {exc.smtp_code} {_reply(exc.smtp_error)}"
        secret = "refresh_token" if s.auth == Auth.OAUTH2 else "password"
        if 400 <= exc.smtp_code < 500:
            return TransientError(message, field=secret, code="auth")
        return PluginError(message, field=secret, code="auth")
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
        exc.__context__, TimeoutError
    ):
        # smtplib reports a read that timed out as a disconnection.
        exc = exc.__context__
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientError(
            f"The server {where} closed the connection while {progress.stage}.",
            code="disconnected",
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return _response_error(progress, exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPException):
        return PluginError(f"SMTP error while {progress.stage}: {exc}", code="smtp")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PluginError(
            f"The server's TLS certificate is not trusted ({exc.verify_message}). Use a "
            "certificate from a trusted authority for this host name; for a private "
            "authority, give its certificate in CA certificate (Advanced: TLS trust), "
            "or pin the server's certificate and turn off certificate verification.",
            field="verify_certificate",
            code="certificate",
        )
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        return PluginError(
            f"TLS failed while {progress.stage} ({reason}). Check that the port and the "
            "connection security match the server (465 is usually SSL/TLS, 587 STARTTLS).",
            field="security",
            code="tls",
        )
    if isinstance(exc, TimeoutError):
        return _timed_out(s, progress, where)
    if isinstance(exc, ConnectionRefusedError):
        return TransientError(
            f"Connection refused by {where}: no SMTP server is listening there, "
            "or a firewall refuses the connection.",
            field="port",
            code="refused",
        )
    if isinstance(exc, OSError):
        return TransientError(
            f"Could not talk to {where} while {progress.stage}: {exc.strerror or exc}.",
            code="network",
        )
    raise exc


def _timed_out(s: SmtpSettings, progress: _Progress, where: str) -> TransientError:
    message = f"Timed out after {s.timeout:g} s while {progress.stage} ({where})."
    if progress.stage == _GREETING and s.security != Security.SSL:
        # A server on an implicit-TLS port waits for the client's TLS handshake and says
        # nothing: both sides wait until the timeout, which alone would not say why.
        return TransientError(
            f"{message} A server that expects SSL/TLS (implicit TLS, usually port 465) "
            "says nothing until the client starts TLS: if this is one, choose SSL/TLS "
            "as the connection security.",
            field="security",
            code="timeout",
        )
    return TransientError(message, code="timeout")


def _open(s: SmtpSettings, progress: _Progress) -> smtplib.SMTP:
    local_hostname = getattr(django_settings, "KILN_SMTP_EHLO_NAME", "kiln.localhost")
    last_error: OSError | None = None
    for _family, address in resolve(s.host, s.port):
        if s.security == Security.SSL:
            client: _PinnedSMTP | _PinnedSMTPSSL = _PinnedSMTPSSL(
                timeout=s.timeout,
                local_hostname=local_hostname,
                context=tls_context(s),
            )
        else:
            client = _PinnedSMTP(timeout=s.timeout, local_hostname=local_hostname)
        client.kiln_address = address
        client.kiln_progress = progress
        # smtplib keeps the name for TLS (SNI, host name check) from its constructor.
        client._host = s.host  # type: ignore[union-attr]
        progress.stage = f"connecting to {s.host}:{s.port}"
        try:
            code, greeting = client.connect(s.host, s.port)
        except OSError as exc:
            if isinstance(exc, smtplib.SMTPException | ssl.SSLError):
                client.close()
                raise
            last_error = exc
            client.close()
            continue
        if code != 220:
            # smtplib's connect() returns a refusing greeting (421 busy, 554 go away)
            # instead of raising: raised here, it is reported with the server's text.
            client.close()
            raise smtplib.SMTPConnectError(code, greeting)
        return client
    assert last_error is not None
    raise last_error


def _negotiate(client: smtplib.SMTP, s: SmtpSettings, progress: _Progress) -> None:
    if s.security == Security.SSL:
        check_pin(client.sock, s.certificate_fingerprint)
    progress.stage = "greeting the server (EHLO)"
    client.ehlo()
    if s.security == Security.STARTTLS:
        if not client.has_extn("starttls"):
            raise PluginError(
                "The server does not offer STARTTLS, so the connection would not be "
                "encrypted; nothing was sent. Choose SSL/TLS or check the port.",
                field="security",
                code="tls",
            )
        progress.stage = "negotiating TLS (STARTTLS)"
        client.starttls(context=tls_context(s))
        check_pin(client.sock, s.certificate_fingerprint)
        progress.stage = "greeting the server after STARTTLS"
        client.ehlo()
    if s.auth not in Auth.SIGNED_IN:
        return
    encrypted = s.security in (Security.STARTTLS, Security.SSL)
    peer = client.sock.getpeername()[0] if client.sock is not None else ""
    if not encrypted and not (peer and ip_address(peer).is_loopback):
        what = "OAuth2 access token" if s.auth == Auth.OAUTH2 else "password"
        raise PluginError(
            f"{what.capitalize()} authentication over an unencrypted connection is "
            f"refused: the {what} would cross the network in clear. Choose STARTTLS or "
            "SSL/TLS.",
            field="security",
            code="tls",
        )
    if not client.has_extn("auth") and not encrypted and client.has_extn("starttls"):
        # Exim as Debian configures it, and Postfix with smtpd_tls_auth_only, offer
        # AUTH only once the connection is encrypted.
        raise PluginError(
            "The server offers authentication (AUTH) only over an encrypted connection, "
            "and offers STARTTLS: choose STARTTLS as the connection security.",
            field="security",
            code="tls",
        )
    if not client.has_extn("auth"):
        raise PluginError(
            "The server does not offer authentication (AUTH). Choose “No authentication” "
            "if it relays without a password.",
            field="auth",
            code="auth",
        )
    progress.stage = "authenticating"
    _authenticate(client, s)


# Preferred first. One mechanism is tried, so that the reply shown is the server's
# answer to it (smtplib's login() tries each in turn and reports the last).
_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")


def _authenticate(client: smtplib.SMTP, s: SmtpSettings) -> None:
    offered = client.esmtp_features.get("auth", "").upper().split()
    if s.auth == Auth.OAUTH2:
        _authenticate_oauth2(client, s, offered)
        return
    mechanism = next((m for m in _MECHANISMS if m in offered), None)
    if mechanism is None:
        raise PluginError(
            f"The server offers no authentication mechanism Kiln supports "
            f"({', '.join(offered) or 'none'}); Kiln supports {', '.join(_MECHANISMS)}.",
            field="auth",
            code="auth",
        )
    client.user, client.password = s.username, s.password
    handler = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
    code, text = client.auth(mechanism, handler, initial_response_ok=True)
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, text)


def _authenticate_oauth2(client: smtplib.SMTP, s: SmtpSettings, offered: list[str]) -> None:
    """XOAUTH2 with the cached access token. A token the server refuses may have been
    revoked or expired early: it is dropped and a new one tried, once, on the same
    connection (RFC 4954 allows AUTH again after a failure); a second refusal means the
    grant itself is no good, and a person must connect again."""
    if "XOAUTH2" not in offered:
        raise PluginError(
            f"The server does not offer OAuth2 (AUTH XOAUTH2; it offers "
            f"{', '.join(offered) or 'none'}). Gmail is smtp.gmail.com, Microsoft 365 "
            "smtp.office365.com, both on port 587 with STARTTLS.",
            field="auth",
            code="auth",
        )
    refused = _try_xoauth2(client, s, oauth.access_token(s))
    if refused is None:
        return
    oauth.forget(s)
    refused = _try_xoauth2(client, s, oauth.access_token(s))
    if refused is None:
        return
    oauth.forget(s)
    raise PluginError(
        f"The server refused the OAuth2 access token, and a fresh one after it: {refused}. "
        "Connect the account again (or paste a new refresh token), and check that SMTP "
        "sign-in is allowed for this mailbox.",
        field="refresh_token",
        code="auth",
    )


def _try_xoauth2(client: smtplib.SMTP, s: SmtpSettings, token: str) -> str | None:
    """None when the server accepts ``token``; its refusal when it refuses the token
    (535, or Google's 334 with an error in base64 JSON, answered with an empty line).
    Other replies (454, a temporary failure) are raised."""
    challenges: list[bytes] = []

    def respond(challenge: bytes | None = None) -> str:
        if challenge is None:
            return oauth.xoauth2(s.username, token)
        challenges.append(challenge)
        return ""

    try:
        client.auth("XOAUTH2", respond, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as exc:
        if exc.smtp_code != 535 and not (challenges and exc.smtp_code >= 500):
            raise
        said = f"{exc.smtp_code} {_reply(exc.smtp_error)}"
        if challenges:
            said += f" (after {_reply(challenges[0][:300])})"
        return said
    return None


class _StaleConnection(Exception):
    """A kept connection the server ended before the transaction began (421 to MAIL
    FROM, or closed): nothing was sent on it."""


def send_message(
    s: SmtpSettings,
    sender: str,
    recipients: list[str],
    data: bytes | Iterable[bytes],
    *,
    reuse_seconds: float = 0,
    **options,
) -> str:
    """One message (``Session.send`` with ``options``) on a session of ``connection``.

    A kept connection may be one the server will not take another message on: Exim
    answers MAIL FROM with 421 after smtp_accept_max_per_connection messages, other
    servers close one idle or old. Nothing was sent on it, so the message goes at once
    on a new connection rather than failing into a retry minutes later."""
    try:
        with connection(s, reuse_seconds=reuse_seconds) as session:
            return session.send(sender, recipients, data, **options)
    except _StaleConnection:
        with connection(s, reuse_seconds=reuse_seconds, fresh=True) as session:
            return session.send(sender, recipients, data, **options)


@contextmanager
def connection(
    s: SmtpSettings, *, reuse_seconds: float = 0, fresh: bool = False
) -> Iterator[Session]:
    """An open, negotiated and authenticated session; errors become ``PluginError``.

    With ``reuse_seconds``, the connection is not closed after a clean session but kept
    in this process for the next session with the same settings, for that long; the next
    one resets it (RSET) before its transaction, and opens a new one if that fails. A
    session that ends with any error closes its connection. ``fresh`` opens a new one
    whatever is kept."""
    progress = _Progress(auth=s.auth)
    client: smtplib.SMTP | None = None
    try:
        take = reuse_seconds > 0 and not fresh
        client = _reused.take(s, reuse_seconds, progress) if take else None
        reused = client is not None
        if client is None:
            client = _open(s, progress)
            _negotiate(client, s, progress)
        yield Session(client, progress, reused=reused)
        if reuse_seconds > 0:
            _reused.keep(s, client)
            client = None
            return
        progress.stage = "closing the connection (QUIT)"
        progress.handed_over = False
        with suppress(smtplib.SMTPException, OSError):
            client.quit()
    except PluginError:
        if client is not None and not (progress.handed_over or progress.in_data):
            _quit_after_refusal(client)
        raise
    except (smtplib.SMTPException, OSError) as exc:
        error = _translate(exc, s, progress)
        answered = isinstance(exc, smtplib.SMTPResponseException)
        if answered and client is not None and not progress.handed_over:
            _quit_after_refusal(client)
        raise error from None
    except Exception as exc:
        # Anything else that cuts the conversation short once the message is being
        # handed over (Celery's soft time limit, say) leaves its delivery unknown: the
        # server may have it. Before that point nothing was sent, and it goes on up.
        if progress.handed_over:
            raise DeliveryUnknown(
                f"Sending to {s.host}:{s.port} was cut short after the message was handed "
                f"over ({type(exc).__name__}); it may or may not have been delivered."
            ) from exc
        raise
    finally:
        if client is not None:
            client.close()


def _quit_after_refusal(client: smtplib.SMTP) -> None:
    """QUIT after the server refused something, rather than dropping the connection
    (RFC 5321 4.1.1.10): Exim logs a drop as an incomplete transaction, and log
    watchers such as fail2ban's Postfix filter (mode ddos) ban a client that often
    leaves with "lost connection after RCPT". Bounded: a server that does not answer
    it is left at once."""
    if client.sock is not None:
        with suppress(OSError):
            client.sock.settimeout(QUIT_SECONDS)
    with suppress(smtplib.SMTPException, OSError):
        client.quit()


class _Reused:
    """Connections kept open in this process between sessions, one per server and
    user. Taken out while in use (a thread never shares one), put back after a clean
    session. One whose settings changed meanwhile (another password, timeout, TLS
    choice) is closed rather than reused, and so is one idle for too long."""

    #: At most this many kept at once; the longest idle is closed first.
    LIMIT = 16

    def __init__(self):
        self._lock = threading.Lock()
        self._idle: dict[tuple, tuple[SmtpSettings, smtplib.SMTP, float]] = {}

    @staticmethod
    def _key(s: SmtpSettings) -> tuple:
        return (s.host, s.port, s.username)

    def take(
        self, s: SmtpSettings, reuse_seconds: float, progress: _Progress
    ) -> smtplib.SMTP | None:
        """A kept connection for ``s``, reset and ready for a transaction, or None."""
        now = time.monotonic()
        with self._lock:
            stale = [k for k, (_, _, at) in self._idle.items() if now - at > reuse_seconds]
            closing = [self._idle.pop(k)[1] for k in stale]
            entry = self._idle.pop(self._key(s), None)
        if entry is not None and entry[0] != s:
            closing.append(entry[1])
            entry = None
        for old in closing:
            _close_quietly(old)
        if entry is None:
            return None
        client = entry[1]
        progress.stage = "resetting a reused connection (RSET)"
        try:
            code, _ = client.rset()
        except (smtplib.SMTPException, OSError):
            code = 0
        if code != 250:
            # Closed by the server meanwhile, most often: nothing was sent on it yet,
            # so a new connection is safe.
            _close_quietly(client)
            return None
        return client

    def keep(self, s: SmtpSettings, client: smtplib.SMTP) -> None:
        with self._lock:
            previous = self._idle.pop(self._key(s), None)
            self._idle[self._key(s)] = (s, client, time.monotonic())
            oldest = None
            if len(self._idle) > self.LIMIT:
                oldest = self._idle.pop(next(iter(self._idle)))
        for entry in (previous, oldest):
            if entry is not None:
                _close_quietly(entry[1])

    def close_all(self) -> None:
        with self._lock:
            entries, self._idle = list(self._idle.values()), {}
        for _, client, _ in entries:
            _close_quietly(client)


def _close_quietly(client: smtplib.SMTP) -> None:
    with suppress(smtplib.SMTPException, OSError):
        client.quit()
    client.close()


_reused = _Reused()
close_reused = _reused.close_all


@dataclass
class Delivery:
    message_id: str
    accepted: list[str]
    reply: str = ""


@dataclass
class Session:
    client: smtplib.SMTP
    progress: _Progress
    warnings: list[str] = field(default_factory=list)
    #: A kept connection, used before (``connection``'s ``reuse_seconds``).
    reused: bool = False

    def send(
        self,
        sender: str,
        recipients: list[str],
        data: bytes | Iterable[bytes],
        *,
        smtputf8: bool,
        size: int | None = None,
        size_field: str = "attachments",
    ) -> str:
        """One SMTP transaction. Every recipient must be accepted before DATA: one
        refused aborts the whole message, so nobody gets it twice on a retry. ``data``
        is the message, whole or in pieces (written as they come, never joined).
        ``size`` (its bytes, when known) is declared to a server that offers SIZE, and
        one over the server's limit is refused on ``size_field`` before it is sent."""
        client, progress = self.client, self.progress
        # A UTF-8 address in the envelope needs SMTPUTF8 whatever the message's headers
        # (a sandbox's catch-all address is in none of them).
        smtputf8 = smtputf8 or not all(a.isascii() for a in (sender, *recipients))
        options = []
        if size is not None and client.has_extn("size"):
            _check_size(client, size, size_field)
            options.append(f"SIZE={size}")
        if smtputf8:
            if not client.has_extn("smtputf8"):
                raise FieldError(
                    "to",
                    "An address has non-ASCII characters before the @, and the server "
                    "does not support SMTPUTF8.",
                )
            options.append("SMTPUTF8")
        if client.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        try:
            if client.has_extn("pipelining"):
                self._pipelined_envelope(sender, recipients, options, smtputf8=smtputf8)
            else:
                self._envelope(sender, recipients, options)
        except smtplib.SMTPServerDisconnected as exc:
            if self.reused:
                raise _StaleConnection from exc
            raise
        progress.stage = "sending the message"
        progress.handed_over = True
        # Pieces are gathered into writes of SEND_BUFFER bytes: many small writes would
        # wait on TCP's delayed acknowledgements (tens of milliseconds each).
        buffer = bytearray()
        for piece in _dot_stuffed([data] if isinstance(data, bytes) else data):
            buffer += piece
            if len(buffer) >= SEND_BUFFER:
                client.send(buffer)
                buffer.clear()
        client.send(buffer)
        progress.stage = "waiting for the server to accept the message"
        code, text = client.getreply()
        progress.handed_over = False
        if code != 250:
            raise _response_error(progress, code, text)
        return _reply(text)

    def _check_not_stale(self, mail_reply: int) -> None:
        """A 421 to the first command on a kept connection: the server ends it."""
        if mail_reply == 421 and self.reused:
            raise _StaleConnection

    def _envelope(self, sender: str, recipients: list[str], options: list[str]) -> None:
        """MAIL FROM, each RCPT TO and DATA, each answered before the next is sent."""
        client, progress = self.client, self.progress
        progress.stage = "sending the sender (MAIL FROM)"
        code, text = client.mail(sender, options)
        self._check_not_stale(code)
        if code != 250:
            raise _response_error(progress, code, text)
        refused: dict[str, tuple[int, str]] = {}
        for recipient in recipients:
            progress.stage = f"sending the recipient {recipient} (RCPT TO)"
            code, text = client.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, _reply(text))
        if refused:
            client.rset()
            raise _refused(refused, progress.auth)
        progress.stage = "starting the message (DATA)"
        code, text = client.docmd("DATA")
        if code != 354:
            raise _response_error(progress, code, text)

    def _pipelined_envelope(
        self, sender: str, recipients: list[str], options: list[str], *, smtputf8: bool
    ) -> None:
        """MAIL FROM, every RCPT TO and DATA in one write, then their replies in order
        (RFC 2920): one round trip instead of one per command. When the server took
        DATA (354) although the sender or a recipient was refused, no message is
        written: the error closes the connection before the final dot, so the server
        delivers nothing."""
        client, progress = self.client, self.progress
        suffix = "".join(f" {option}" for option in options)
        commands = [f"MAIL FROM:{smtplib.quoteaddr(sender)}{suffix}\r\n"]
        commands += [f"RCPT TO:{smtplib.quoteaddr(r)}\r\n" for r in recipients]
        commands.append("DATA\r\n")
        progress.stage = "sending the envelope (MAIL FROM, RCPT TO, DATA)"
        client.send("".join(commands).encode("utf-8" if smtputf8 else "ascii"))
        progress.stage = "sending the sender (MAIL FROM)"
        code, text = client.getreply()
        self._check_not_stale(code)
        error = _response_error(progress, code, text) if code != 250 else None
        refused: dict[str, tuple[int, str]] = {}
        for recipient in recipients:
            progress.stage = f"sending the recipient {recipient} (RCPT TO)"
            code, text = client.getreply()
            if code not in (250, 251):
                refused[recipient] = (code, _reply(text))
        progress.stage = "starting the message (DATA)"
        code, text = client.getreply()
        if error is None and refused:
            error = _refused(refused, progress.auth)
        if error is None and code != 354:
            error = _response_error(progress, code, text)
        if error is not None:
            progress.in_data = code == 354
            raise error


def _check_size(client: smtplib.SMTP, size: int, field: str) -> None:
    """Refuse a message over the limit the server announced (EHLO SIZE, RFC 1870) before
    any of it is sent: the server would take it all, then answer 552 at the end."""
    announced = client.esmtp_features.get("size", "")
    limit = int(announced) if announced.isdigit() else 0
    if limit and size > limit:
        raise PluginError(
            f"The message is {size:,} bytes once encoded (attachments grow by a third in "
            f"base64), over the {limit:,} bytes the server takes (its SIZE limit); nothing "
            "was sent. Send smaller or fewer attachments, or a link to the file.",
            field=field,
            code="too_large",
        )


def _refused(refused: dict[str, tuple[int, str]], auth: str) -> PluginError:
    wants = next((reply for reply in refused.values() if reply[0] == 530), None)
    if wants is not None:
        return _requirement(*wants, auth)
    listed = "; ".join(f"{r}: {c} {t}" for r, (c, t) in refused.items())
    message = f"The server refused recipient(s), nothing was sent: {listed}"
    if all(400 <= c < 500 for c, _ in refused.values()):
        return TransientError(message, field="to", code="recipient_refused")
    return PluginError(message, field="to", code="recipient_refused")


def _dot_stuffed(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The message as DATA carries it: a dot that starts a line doubled (RFC 5321
    4.5.2), a CRLF at the end if it lacks one, then the line with the lone dot."""
    line_start, tail = True, b""
    for piece in pieces:
        if not piece:
            continue
        if line_start and piece[:1] == b".":
            yield b"."
        yield _LINE_DOT.sub(b"\n..", piece) if b"\n." in piece else piece
        line_start = piece[-1:] == b"\n"
        tail = (tail + piece[-2:])[-2:]
    yield b".\r\n" if tail == b"\r\n" else b"\r\n.\r\n"
