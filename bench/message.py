"""What building a checked email costs, against the standard library building the same
message unchecked.

Run: .venv/bin/python bench/message.py [iterations]

Compares, in one run, per message (mixed-script subject and display names, a text and
an HTML body, two custom headers, a 20 KB attachment):
  kiln   build_email(fields).as_bytes(): every address parsed and validated, every header
         checked as written and encoded so that it parses back equal, the bodies and the
         attachment typed from their bytes;
  plain  EmailMessage with the same headers, bodies and attachment, as_bytes(policy=SMTP):
         nothing checked.
With --invite, both add a calendar invite (Kiln's from its fields, the plain one a fixed
text/calendar part), and with --inline an inline image referenced by cid:.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.django_env import start_django  # noqa: E402

SUBJECT = "Réunion « trimestrielle » 📅 — 会議の議題 и повестка дня: prochaines étapes ✔"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
ATTACHMENT = bytes(range(256)) * 80  # 20 KB, not text
ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nMETHOD:REQUEST\r\n"
    "BEGIN:VEVENT\r\nUID:bench@example.com\r\nDTSTAMP:20270101T000000Z\r\n"
    "DTSTART:20270115T080000Z\r\nDTEND:20270115T090000Z\r\nSUMMARY:Review\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def fields(invite: bool, inline: bool) -> dict:
    html = "<p>Bonjour Zoë,</p><p>l'ordre du jour est joint.</p>"
    if inline:
        html += '<img src="cid:logo.png" alt="Logo">'
    found = {
        "from": "Équipe Kiln <team@example.com>",
        "to": "Zoë Ødegård <zoe@example.com>, Алексей <alexei@example.com>",
        "cc": "archive@example.com",
        "subject": SUBJECT,
        "body": "Bonjour Zoë,\n\nl'ordre du jour est joint.\n",
        "html_body": html,
        "headers": {"List-Unsubscribe": "<mailto:unsubscribe@example.com>", "X-Ref": "Q-42"},
        "attachments": [{"name": "agenda.bin", "data": ATTACHMENT}],
    }
    if inline:
        found["inline_images"] = [{"name": "logo.png", "data": PNG}]
    if invite:
        found.update(invite_start="2027-01-15T09:00", invite_timezone="Europe/Berlin")
    return found


def plain(invite: bool, inline: bool) -> bytes:
    message = EmailMessage()
    message["From"] = "Équipe Kiln <team@example.com>"
    message["To"] = "Zoë Ødegård <zoe@example.com>, Алексей <alexei@example.com>"
    message["Cc"] = "archive@example.com"
    message["Subject"] = SUBJECT
    message["List-Unsubscribe"] = "<mailto:unsubscribe@example.com>"
    message["X-Ref"] = "Q-42"
    message.set_content("Bonjour Zoë,\n\nl'ordre du jour est joint.\n")
    html = "<p>Bonjour Zoë,</p><p>l'ordre du jour est joint.</p>"
    if inline:
        html += '<img src="cid:logo.png" alt="Logo">'
    message.add_alternative(html, subtype="html")
    if inline:
        html_part = message.get_body(preferencelist=("html",))
        html_part.add_related(PNG, maintype="image", subtype="png", cid="<logo.png>")
    if invite:
        message.add_alternative(ICS, subtype="calendar", params={"method": "REQUEST"})
    message.add_attachment(
        ATTACHMENT, maintype="application", subtype="octet-stream", filename="agenda.bin"
    )
    return message.as_bytes(policy=policy.SMTP)


def per_message_us(func, iterations: int, repeat: int = 5) -> float:
    for _ in range(min(iterations, 50)):  # warm caches and the interpreter
        func()
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(iterations):
            func()
        rounds.append((time.perf_counter() - start) / iterations * 1e6)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("iterations", nargs="?", type=int, default=300)
    parser.add_argument("--invite", action="store_true", help="add a calendar invite")
    parser.add_argument("--inline", action="store_true", help="add an inline image")
    args = parser.parse_args()
    start_django()
    from datasources.plugins.smtp.compose import build_email

    given = fields(args.invite, args.inline)
    kiln_us = per_message_us(lambda: build_email(given).as_bytes(), args.iterations)
    plain_us = per_message_us(lambda: plain(args.invite, args.inline), args.iterations)
    print(f"kiln   build_email + as_bytes   {kiln_us:9.1f} us/message")
    print(f"plain  EmailMessage + as_bytes  {plain_us:9.1f} us/message")
    print(f"ratio  kiln/plain               {kiln_us / plain_us:9.2f}x")


if __name__ == "__main__":
    main()
