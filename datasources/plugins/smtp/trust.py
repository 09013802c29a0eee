"""Per-datasource TLS trust: a CA certificate to trust and a pinned server certificate.

A private mail server (an internal relay with a company CA, a self-signed appliance)
verifies with these instead of certificate checks turned off, and without trusting its
CA for every datasource of the process (``SSL_CERT_FILE``).
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from datasources.errors import FieldError, PluginError

#: A CA bundle larger than this is refused: a private CA chain is a few kilobytes, and
#: the text is kept in the datasource's settings and in a cache of TLS contexts.
MAX_CA_BYTES = 64 * 1024

_HEX64 = re.compile(r"[0-9a-f]{64}")
#: What tools print before a fingerprint ("SHA256 Fingerprint=" from openssl x509,
#: "sha256:" from others), accepted and dropped.
_FINGERPRINT_PREFIX = re.compile(r"^\s*(sha-?256(\s+fingerprint)?\s*[=:]?)", re.IGNORECASE)


def clean_ca_certificate(text: str) -> str:
    """The certificates of ``text`` as PEM, one after the other, or "" for none.

    Anything around the certificates is dropped, so what is stored (and compared when
    deciding whether the saved password may stay) does not depend on line endings or
    comments. A private key in the text is refused: settings are not secret (they are
    exported with the app), a key pasted there by mistake would leak."""
    text = (text or "").strip()
    if not text:
        return ""
    if len(text.encode("utf-8")) > MAX_CA_BYTES:
        raise FieldError(
            "ca_certificate",
            f"CA certificate: at most {MAX_CA_BYTES // 1024} KB of PEM text.",
        )
    if "PRIVATE KEY" in text:
        raise FieldError(
            "ca_certificate",
            "CA certificate: the text holds a private key. Paste only the CA's "
            "certificate (-----BEGIN CERTIFICATE-----), never a key.",
        )
    try:
        certificates = x509.load_pem_x509_certificates(text.encode("utf-8"))
    except ValueError:
        raise FieldError(
            "ca_certificate",
            "CA certificate: not a PEM certificate. Paste the CA's certificate as text, "
            "from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE----- (several may "
            "follow each other).",
        ) from None
    pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)
    try:
        ssl.create_default_context(cadata=pem)
    except ssl.SSLError as exc:
        raise FieldError(
            "ca_certificate", f"CA certificate: TLS cannot use it ({exc.reason or exc})."
        ) from None
    return pem


def clean_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as ``AB:CD:...`` (the form openssl prints), or "" for none.
    Accepted with or without colons or spaces, in either case."""
    text = _FINGERPRINT_PREFIX.sub("", text or "").strip()
    if not text:
        return ""
    digits = re.sub(r"[\s:]", "", text).lower()
    if not _HEX64.fullmatch(digits):
        raise FieldError(
            "certificate_fingerprint",
            "Pinned fingerprint: expected the SHA-256 fingerprint of the server's "
            "certificate, 64 hexadecimal digits (colons allowed), e.g. from "
            "“openssl x509 -noout -fingerprint -sha256”.",
        )
    return _colons(digits)


def fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate, as ``clean_fingerprint`` keeps it."""
    return _colons(hashlib.sha256(der).hexdigest())


def _colons(digits: str) -> str:
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2)).upper()


def check_pin(sock: socket.socket | None, pinned: str) -> None:
    """Raises unless the server's certificate on ``sock`` is the pinned one. Checked
    right after the TLS handshake, before anything (a password) is sent over it."""
    if not pinned:
        return
    der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
    actual = fingerprint(der) if der else "none"
    if actual != pinned:
        raise PluginError(
            f"The server's certificate is not the pinned one: its SHA-256 fingerprint is "
            f"{actual}, the datasource pins {pinned}. Nothing was sent. If the server's "
            "certificate was renewed, put its new fingerprint in Pinned fingerprint.",
            field="certificate_fingerprint",
            code="certificate_pin",
        )
