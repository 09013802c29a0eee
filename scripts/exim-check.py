"""Send Kiln's Send email cases through a real Exim and compare what it delivers.

By hand, as root, on a machine with Exim (``apt-get install exim4-daemon-light``):

    .venv/bin/python scripts/exim-check.py

It starts its own Exim (never the system service) on 127.0.0.1 ports 25871-25876
with a test CA, AUTH PLAIN/LOGIN, SMTPUTF8, a 1 MB port, a greylisting port and an
implicit-TLS port, runs each case through the plugin's prepare and execute (the
stored form a run sends), prints PASS or FAIL per case and stops Exim. Its files
stay in /tmp/kiln-exim (log/mainlog says what Exim thought). See docs/testing.md.
"""

from __future__ import annotations

import base64
import email
import os
import random
import subprocess
import sys
import time
from email import policy
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kiln.settings")
os.environ["KILN_SMTP_PORTS"] = "any"

import django  # noqa: E402

django.setup()

from datasources.errors import PluginError, TransientError  # noqa: E402
from datasources.plugins.smtp.config import SmtpSettings  # noqa: E402
from datasources.plugins.smtp.plugin import SmtpPlugin  # noqa: E402
from datasources.plugins.smtp.stored import Envelope, message_pieces  # noqa: E402
from tests.support.certs import make_certificates  # noqa: E402

ROOT = Path("/tmp/kiln-exim")
PASSWORD = "s3cret-pässword"
#: 25871 STARTTLS, 25872 implicit TLS, 25873 AUTH required, 25874 greylists unless
#: ROOT/grey-open exists, 25875 takes 1 MB, 25876 AUTH only after STARTTLS.
CONFIG = """
keep_environment =
primary_hostname = mx.test.kiln
domainlist local_domains = test.kiln
daemon_smtp_ports = 25871 : 25872 : 25873 : 25874 : 25875 : 25876
local_interfaces = 127.0.0.1
tls_on_connect_ports = 25872
spool_directory = @ROOT@/spool
log_file_path = @ROOT@/log/%slog
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
host_lookup =
message_size_limit = ${if eq{$received_port}{25875}{1M}{60M}}
smtp_accept_queue_per_connection = 0
tls_advertise_hosts = *
tls_certificate = @ROOT@/certs/server.pem
tls_privatekey = @ROOT@/certs/server.key
smtputf8_advertise_hosts = *
auth_advertise_hosts = ${if and{{eq{$received_port}{25876}}{eq{$tls_in_cipher}{}}} \\
  {}{*}}
acl_smtp_mail = acl_mail
acl_smtp_rcpt = acl_rcpt
acl_smtp_data = acl_data
begin acl
acl_mail:
  deny condition = ${if eq{$received_port}{25873}}
       !authenticated = *
       message = 530 5.7.0 Authentication required
  accept
acl_rcpt:
  defer condition = ${if eq{$received_port}{25874}}
        condition = ${if exists{@ROOT@/grey-open}{no}{yes}}
        message = 451 4.7.1 Greylisted, please try again later
  accept domains = +local_domains
  deny message = relay not permitted
acl_data:
  deny condition = ${if > {$max_received_linelength}{998}}
       message = maximum allowed line length is 998 octets
  deny !verify = header_syntax
       message = header syntax: $acl_verify_message
  accept
begin routers
local:
  driver = accept
  domains = +local_domains
  transport = maildir
begin transports
maildir:
  driver = appendfile
  directory = @ROOT@/Maildir
  maildir_format
  user = Debian-exim
  envelope_to_add = true
begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and{{eq{$auth2}{kiln}}{eq{$auth3}{@PASSWORD@}}}}
login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = ${if and{{eq{$auth1}{kiln}}{eq{$auth2}{@PASSWORD@}}}}
"""


def start_exim() -> subprocess.Popen:
    """Exim in the foreground on its own configuration, trusted for -C as root."""
    for sub in ("spool", "log", "Maildir"):
        (ROOT / sub).mkdir(parents=True, exist_ok=True)
    certs = make_certificates(ROOT / "certs")
    conf = ROOT / "exim.conf"
    conf.write_text(CONFIG.replace("@ROOT@", str(ROOT)).replace("@PASSWORD@", PASSWORD))
    # Exim takes -C from root only for a file listed there (Debian's TRUSTED_CONFIG_LIST).
    trusted = Path("/etc/exim4/trusted_configs")
    if str(conf) not in (trusted.read_text().split() if trusted.exists() else []):
        with trusted.open("a") as f:
            f.write(f"{conf}\n")
    subprocess.run(["chown", "-R", "Debian-exim:", ROOT / "spool", ROOT / "log", ROOT / "Maildir"])
    subprocess.run(["chown", "Debian-exim", certs.key_file])
    exim = subprocess.Popen(["exim4", "-C", str(conf), "-bdf", "-q10s"])
    time.sleep(1)
    return exim


plugin = SmtpPlugin()
SENDER = "Kiln Test <sender@test.kiln>"
RESULTS: list[tuple[str, str, str]] = []


def settings(**overrides) -> SmtpSettings:
    values = {
        "host": "localhost",
        "port": 25871,
        "username": "kiln",
        "password": PASSWORD,
        "timeout": 5,
        "ca_certificate": (ROOT / "certs" / "ca.pem").read_text(),
    }
    return SmtpSettings(**{**values, **overrides})


def send(fields: dict, s: SmtpSettings | None = None) -> tuple[bytes, Envelope]:
    """Prepared (placeholders) and executed as a run is; returns the bytes it sent."""
    prepared = plugin.prepare("send_email", {"from": SENDER, "to": "rcpt@test.kiln", **fields})
    envelope = Envelope.from_json(prepared.payload_meta)
    assert envelope is not None
    pieces = message_pieces(bytes(prepared.payload), envelope, prepared.files)
    sent = b"".join(bytes(p) for p in pieces)
    context = SimpleNamespace(
        payload=prepared.payload, payload_meta=prepared.payload_meta, files=prepared.files
    )
    plugin.execute(s or settings(), "send_email", {}, context)
    return sent, envelope


def delivered(fields: dict, s: SmtpSettings | None = None, copies: int = 1):
    """Sends, then waits for the delivered copies; each must end with the sent bytes."""
    sent, envelope = send(fields, s)
    found: list[bytes] = []
    for _ in range(100):
        found = [
            data
            for path in (ROOT / "Maildir" / "new").glob("*")
            if envelope.message_id.encode() in (data := path.read_bytes())
        ]
        if len(found) >= copies:
            break
        time.sleep(0.1)
    assert len(found) == copies, f"{len(found)} of {copies} copies delivered"
    assert all(d.endswith(sent.replace(b"\r\n", b"\n")) for d in found), "bytes differ"
    return email.message_from_string(found[0].decode("utf-8"), policy=policy.default)


def case(fn):
    try:
        RESULTS.append((fn.__name__, "PASS", fn() or ""))
    except Exception as exc:
        RESULTS.append((fn.__name__, "FAIL", f"{type(exc).__name__}: {exc}"))
    return fn


def refusal(fields: dict, s: SmtpSettings) -> PluginError:
    try:
        send(fields, s)
    except PluginError as exc:
        return exc
    raise AssertionError("sent")


def run_cases() -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    blob = random.Random(1).randbytes(10 * 1024 * 1024)

    def url(mime: str, data: bytes) -> str:
        return f"data:{mime};base64," + base64.b64encode(data).decode()

    @case
    def text_html_dots_and_long_lines():
        html = "<p>" + "long é " * 400 + "</p>\n.dot line"
        msg = delivered({"subject": "alt", "body": ".first\n..second\n", "html_body": html})
        assert msg.get_body(("plain",)).get_content() == ".first\n..second\n"
        assert msg.get_body(("html",)).get_content().rstrip("\n") == html

    @case
    def attachment_10_mb():
        msg = delivered(
            {
                "subject": "big",
                "attachments": [{"name": "b.bin", "data": url("application/octet-stream", blob)}],
            }
        )
        assert next(msg.iter_attachments()).get_content() == blob

    @case
    def inline_image_and_invite():
        msg = delivered(
            {
                "subject": "inline",
                "html_body": '<img src="cid:logo.png">',
                "inline_images": [{"name": "logo.png", "data": url("image/png", png)}],
                "invite_start": "2027-01-15T09:00",
                "invite_timezone": "Europe/Berlin",
            }
        )
        image = next(p for p in msg.walk() if p.get_content_type() == "image/png")
        assert image["Content-ID"] == "<logo.png>" and image.get_content() == png
        invite = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
        assert invite.get_param("method") == "REQUEST"
        assert "DTSTART:20270115T080000Z" in invite.get_content()

    @case
    def headers_names_subject_utf8_addresses():
        subject = ("Grüße «Kiln» 😀 日本語 Привет " * 7).strip()
        unsubscribe = "<https://example.com/u?id=42>, <mailto:u@test.kiln>"
        msg = delivered(
            {
                "from": "Zoë Ångström <sender@test.kiln>",
                "to": "Jürgen <jürgen@test.kiln>",
                "subject": subject,
                "headers": {"List-Unsubscribe": unsubscribe},
            }
        )
        got = (str(msg["Subject"]), str(msg["List-Unsubscribe"]))
        assert got == (subject, unsubscribe), got
        assert msg["To"].addresses[0].addr_spec == "jürgen@test.kiln"
        assert msg["From"].addresses[0].display_name == "Zoë Ångström"

    @case
    def recipients_100():
        delivered(
            {"subject": "many", "to": ", ".join(f"r{i}@test.kiln" for i in range(100))}, copies=100
        )

    @case
    def connection_checks():
        assert plugin.test_connection(settings()).ok
        assert "not trusted" in plugin.test_connection(settings(ca_certificate="")).message
        assert plugin.test_connection(settings(port=25872, security="ssl")).ok
        timed_out = plugin.test_connection(settings(port=25872, timeout=2)).message
        assert "choose SSL/TLS" in timed_out, timed_out
        assert (
            "choose STARTTLS"
            in plugin.test_connection(settings(port=25876, security="none")).message
        )

    @case
    def refusals():
        wrong = refusal({}, settings(password="nope"))
        assert (wrong.field, "535" in wrong.message) == ("password", True), wrong.message
        required = refusal({}, settings(port=25873, auth="none"))
        assert (required.field, "530" in required.message) == ("auth", True), required.message
        big = {
            "attachments": [
                {"name": "b.bin", "data": url("application/octet-stream", blob[:2_000_000])}
            ]
        }
        too_large = refusal(big, settings(port=25875))
        assert (too_large.field, too_large.code) == ("attachments", "too_large"), too_large.message

    @case
    def greylisting():
        grey = ROOT / "grey-open"
        grey.unlink(missing_ok=True)
        assert isinstance(refusal({"subject": "grey"}, settings(port=25874)), TransientError)
        grey.touch()
        try:
            delivered({"subject": "grey"}, settings(port=25874))
        finally:
            grey.unlink()


def main() -> int:
    exim = start_exim()
    try:
        run_cases()
    finally:
        exim.terminate()
        exim.wait(5)
    for name, status, detail in RESULTS:
        print(f"{status}  {name}  {detail}"[:300])
    return 0 if all(status == "PASS" for _, status, _ in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
