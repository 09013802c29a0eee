"""The sandbox's header of original recipients: folded between addresses, never before
the first, every line within 78 characters."""

from __future__ import annotations

import email
from email import policy

from datasources.plugins.smtp.sandbox import HEADER, header_line


def test_a_short_list_is_one_line():
    assert header_line(["a@x.com", "b@y.com"], False) == (
        f"{HEADER}: a@x.com, b@y.com\r\n".encode()
    )


def test_a_long_list_is_folded_between_addresses_and_reads_back_whole():
    recipients = [f"person{n}@example.com" for n in range(40)]
    line = header_line(recipients, False)
    assert all(len(part) <= 78 for part in line.split(b"\r\n"))
    assert line.startswith(f"{HEADER}: person0@example.com,".encode())
    message = email.message_from_bytes(line + b"\r\nbody", policy=policy.default)
    assert [a.strip() for a in str(message[HEADER]).split(",")] == recipients


def test_utf8_addresses_with_smtputf8():
    assert "ü".encode() in header_line(["jürgen@example.com"], True)
