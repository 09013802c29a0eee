"""The dev mailbox end to end: the real SMTP server stores mail, the pages show it."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from core.filenames import safe_filename
from devmailbox import server
from devmailbox.models import MailboxMessage
from tests.support.smtp_server import free_port

SUBJECT = "Grüße ✓"
TEXT = "Hello Ada,\nyour report is attached.\n"
HTML = '<p>Hello <b>Ada</b>, <img src="https://tracker.example/pixel.gif"></p>'
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8
# Active content posing as an attachment: it must only ever be downloaded.
EVIL_HTML = b"<script>alert(document.cookie)</script>"


@pytest.fixture
def mailbox_port(transactional_db):
    # transactional_db: the server's handler writes from its own thread and connection,
    # which would not see (or be rolled back with) a test transaction.
    port = free_port()
    controller = server.start("127.0.0.1", port)
    yield port
    controller.stop()


def make_message() -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "Kiln App <app@example.com>"
    message["To"] = "Ada Lovelace <ada@example.com>"
    message["Subject"] = SUBJECT
    message["Message-ID"] = "<devmailbox-test@example.com>"
    message.set_content(TEXT)
    message.add_alternative(HTML, subtype="html")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="report.pdf")
    message.add_attachment(EVIL_HTML, maintype="text", subtype="html", filename="../evil.html")
    return message


def wait_for_message(timeout: float = 5.0) -> MailboxMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = MailboxMessage.objects.first()
        if stored is not None:
            return stored
        time.sleep(0.05)
    raise AssertionError(f"no message stored within {timeout} s")


@pytest.fixture
def sent(mailbox_port) -> tuple[MailboxMessage, bytes]:
    """Sends the test message; returns the stored row and the exact bytes sent."""
    data = make_message().as_bytes()
    with smtplib.SMTP("127.0.0.1", mailbox_port, timeout=10) as smtp:
        smtp.sendmail("bounces@example.com", ["ada@example.com", "audit@example.com"], data)
    return wait_for_message(), data


@pytest.fixture
def staff(transactional_db) -> Client:
    user = get_user_model().objects.create_user("owner", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def outsider(transactional_db) -> Client:
    user = get_user_model().objects.create_user("outsider", password="pw")
    client = Client()
    client.force_login(user)
    return client


def test_it_stores_the_message_as_received(sent):
    stored, data = sent
    assert stored.raw_bytes == data
    assert stored.size == len(data)
    assert stored.subject == SUBJECT
    assert stored.mail_from == "bounces@example.com"
    assert stored.rcpt_tos == ["ada@example.com", "audit@example.com"]
    assert stored.attachment_count == 2


def test_list_shows_the_message(sent, staff):
    response = staff.get(reverse("devmailbox:list"))
    assert response.status_code == 200
    page = response.content.decode()
    assert SUBJECT in page
    assert "bounces@example.com" in page
    assert "ada@example.com, audit@example.com" in page
    assert reverse("devmailbox:detail", args=[sent[0].pk]) in page
    assert "Delete all" in page


def test_list_when_empty_says_how_to_start_the_server(mailbox_port, staff):
    page = staff.get(reverse("devmailbox:list")).content.decode()
    assert "No messages yet" in page
    assert "python manage.py devmailbox" in page
    assert "demo SMTP datasource" in page
    assert "Delete all" not in page


def test_detail_shows_headers_text_and_attachments(sent, staff):
    stored, _ = sent
    url = reverse("devmailbox:detail", args=[stored.pk])

    page = staff.get(url).content.decode()
    assert "Kiln App &lt;app@example.com&gt;" in page
    assert "Ada Lovelace &lt;ada@example.com&gt;" in page
    assert SUBJECT in page
    assert "report.pdf" in page
    assert "evil.html" in page
    assert reverse("devmailbox:attachment", args=[stored.pk, 0]) in page
    assert reverse("devmailbox:raw", args=[stored.pk]) in page
    # The HTML body opens first, in a sandboxed iframe, never inline in the page.
    assert f'sandbox title="HTML body" src="{reverse("devmailbox:html", args=[stored.pk])}"' in page
    assert "tracker.example" not in page

    text_tab = staff.get(url, {"tab": "text"}).content.decode()
    assert '<pre class="body">Hello Ada,\nyour report is attached.\n</pre>' in text_tab

    headers_tab = staff.get(url, {"tab": "headers"}).content.decode()
    assert "<dt>Message-ID</dt><dd>&lt;devmailbox-test@example.com&gt;</dd>" in headers_tab
    assert f"<dt>Subject</dt><dd>{SUBJECT}</dd>" in headers_tab


def test_a_tab_switch_by_htmx_gets_only_the_body_card(sent, staff):
    url = reverse("devmailbox:detail", args=[sent[0].pk])
    response = staff.get(
        url, {"tab": "text"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="message-body"
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<div class="card" id="message-body">')
    assert "<html" not in page
    assert "your report is attached" in page


def test_attachment_is_a_download_with_the_exact_bytes(sent, staff):
    response = staff.get(reverse("devmailbox:attachment", args=[sent[0].pk, 0]))
    assert response.status_code == 200
    assert response.content == PDF
    assert response["Content-Disposition"] == 'attachment; filename="report.pdf"'
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_html_attachment_is_never_served_as_html(sent, staff):
    response = staff.get(reverse("devmailbox:attachment", args=[sent[0].pk, 1]))
    assert response.content == EVIL_HTML
    # The sender's "../" is dropped from the name.
    assert response["Content-Disposition"] == 'attachment; filename="evil.html"'
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Security-Policy"].startswith("sandbox")


def test_a_missing_attachment_is_404(sent, staff):
    response = staff.get(reverse("devmailbox:attachment", args=[sent[0].pk, 2]))
    assert response.status_code == 404


def test_html_body_is_served_sandboxed(sent, staff):
    response = staff.get(reverse("devmailbox:html", args=[sent[0].pk]))
    assert response.status_code == 200
    assert response.content.decode() == HTML + "\n"
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Content-Security-Policy"] == (
        "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    )
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_raw_is_an_eml_download(sent, staff):
    stored, data = sent
    response = staff.get(reverse("devmailbox:raw", args=[stored.pk]))
    assert response.content == data
    assert response["Content-Type"] == "message/rfc822"
    assert response["Content-Disposition"] == f'attachment; filename="message-{stored.pk}.eml"'


def all_urls(pk: int) -> list[str]:
    return [
        reverse("devmailbox:list"),
        reverse("devmailbox:detail", args=[pk]),
        reverse("devmailbox:html", args=[pk]),
        reverse("devmailbox:attachment", args=[pk, 0]),
        reverse("devmailbox:raw", args=[pk]),
    ]


def test_it_is_404_for_a_user_who_is_not_staff(sent, outsider):
    for url in all_urls(sent[0].pk):
        assert outsider.get(url).status_code == 404, url
    assert outsider.post(reverse("devmailbox:clear")).status_code == 404
    assert MailboxMessage.objects.count() == 1


def test_it_sends_anonymous_users_to_sign_in(sent, client):
    for url in all_urls(sent[0].pk):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("login") + "?next="), url


def test_it_is_404_when_switched_off(sent, staff, settings):
    settings.KILN_DEVMAILBOX = False
    for url in all_urls(sent[0].pk):
        assert staff.get(url).status_code == 404, url
    assert staff.post(reverse("devmailbox:clear")).status_code == 404


def test_delete_all_empties_the_mailbox(sent, staff):
    response = staff.post(reverse("devmailbox:clear"), follow=True)
    assert response.redirect_chain == [(reverse("devmailbox:list"), 302)]
    assert MailboxMessage.objects.count() == 0
    page = response.content.decode()
    assert "Deleted 1 message." in page
    assert "No messages yet" in page


def test_delete_all_by_htmx_redirects_the_page(sent, staff):
    response = staff.post(reverse("devmailbox:clear"), HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == reverse("devmailbox:list")
    assert MailboxMessage.objects.count() == 0


def test_delete_all_refuses_get(sent, staff):
    assert staff.get(reverse("devmailbox:clear")).status_code == 405
    assert MailboxMessage.objects.count() == 1


def test_it_accepts_smtputf8_addresses(mailbox_port):
    message = EmailMessage(policy=policy.SMTPUTF8)
    message["From"] = "jörg@bücher.example"
    message["To"] = "zoë@example.com"
    message["Subject"] = "Ünïcode all the way"
    message.set_content("Grüße\n")
    with smtplib.SMTP("127.0.0.1", mailbox_port, timeout=10) as smtp:
        smtp.send_message(message)
    stored = wait_for_message()
    assert stored.mail_from == "jörg@bücher.example"
    assert stored.rcpt_tos == ["zoë@example.com"]
    assert stored.subject == "Ünïcode all the way"
    assert stored.text_body == "Grüße\n"


@pytest.mark.parametrize(
    ("sent_name", "download_name"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ada\\x.txt", "x.txt"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ('a"b\r\nc.txt', "a_bc.txt"),
        ("..", "fallback"),
        ("", "fallback"),
    ],
)
def test_safe_filename(sent_name, download_name):
    assert safe_filename(sent_name, fallback="fallback") == download_name


def test_the_command_runs_until_sigterm():
    port = free_port()
    manage = Path(__file__).resolve().parents[2] / "manage.py"
    process = subprocess.Popen(
        [sys.executable, str(manage), "devmailbox", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        banner = process.stdout.readline()
        assert banner.strip() == (
            f"Dev mailbox listening on smtp://127.0.0.1:{port} — messages at /devmailbox/"
        )
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            assert smtp.noop()[0] == 250
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "Dev mailbox stopped." in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
