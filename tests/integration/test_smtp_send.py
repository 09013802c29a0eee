"""Send email, end to end against a real SMTP server: every field of the seed's table."""

from __future__ import annotations

import base64
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from datasources.errors import DeliveryUnknown, FieldError, PluginError, TransientError
from datasources.plugins import get_plugin
from datasources.plugins.smtp.config import Security
from tests.support.smtp_server import free_port

smtp = get_plugin("smtp")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n" + "Grüße\n".encode() * 50


def data_url(mime: str, content: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(content).decode()


def send(server, **fields):
    values = {"from": "app@kiln.test", "to": "ann@example.com", "subject": "Hi", "body": "Hello"}
    values.update(fields)
    return smtp.execute(server.settings(), "send_email", values)


def test_it_returns_exactly_the_seed_response(smtp_server):
    result = send(smtp_server)
    assert result.data == {"success": True, "message": "Email sent successfully"}
    assert len(smtp_server.received) == 1


def test_every_field_reaches_the_message(smtp_server):
    send(
        smtp_server,
        **{
            "from": "Kiln App <app@kiln.test>",
            "set_reply_to": True,
            "reply_to": "support@kiln.test",
            "to": "ann@example.com, Bob Jones <bob@example.com>,carl@example.com",
            "cc": ["dana@example.com"],
            "bcc": "secret@example.com, hidden@example.com",
            "subject": "Grüße from Kiln ✓",
            "body": "<h1>Hello Ann</h1><p>Your order &amp; invoice.</p>",
            "body_type": "html",
            "attachments": [
                {
                    "name": "logo.png",
                    "type": "image/png",
                    "size": len(PNG),
                    "data": data_url("image/png", PNG),
                },
                SimpleUploadedFile("invoice.pdf", PDF, content_type="application/pdf"),
            ],
        },
    )
    (received,) = smtp_server.received
    msg = received.message
    assert received.mail_from == "app@kiln.test"
    assert received.rcpt_tos == [
        "ann@example.com",
        "bob@example.com",
        "carl@example.com",
        "dana@example.com",
        "secret@example.com",
        "hidden@example.com",
    ]
    assert msg["From"] == "Kiln App <app@kiln.test>"
    assert msg["Reply-To"] == "support@kiln.test"
    assert msg["To"] == "ann@example.com, Bob Jones <bob@example.com>, carl@example.com"
    assert msg["Cc"] == "dana@example.com"
    assert msg["Bcc"] is None
    assert b"secret@example.com" not in received.data
    assert msg["Subject"] == "Grüße from Kiln ✓"
    assert msg["Message-ID"].endswith("@kiln.test>")
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == (
        "<h1>Hello Ann</h1><p>Your order &amp; invoice.</p>\n"
    )
    assert "Hello Ann" in msg.get_body(("plain",)).get_content()
    attachments = {
        a.get_filename(): (a.get_content_type(), a.get_content()) for a in msg.iter_attachments()
    }
    assert attachments == {"logo.png": ("image/png", PNG), "invoice.pdf": ("application/pdf", PDF)}


def test_reply_to_is_left_out_unless_toggled(smtp_server):
    send(smtp_server, set_reply_to=False, reply_to="support@kiln.test")
    assert smtp_server.received[0].message["Reply-To"] is None


def test_a_text_body_is_plain_utf8(smtp_server):
    send(smtp_server, body="Çà va? ✓\nSecond line")
    msg = smtp_server.received[0].message
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().replace("\r\n", "\n") == "Çà va? ✓\nSecond line\n"


def test_an_idn_domain_is_encoded(smtp_server):
    send(smtp_server, to="ann@bücher.example")
    assert smtp_server.received[0].rcpt_tos == ["ann@xn--bcher-kva.example"]


def test_no_attachments_for_an_empty_list(smtp_server):
    send(smtp_server, attachments=[])
    send(smtp_server, attachments=None)
    assert [list(r.message.iter_attachments()) for r in smtp_server.received] == [[], []]


def test_a_workspace_file_is_attached(smtp_server, db, tmp_path, settings):
    from types import SimpleNamespace

    from django.core.files.base import ContentFile

    from workspaces.models import Workspace, WorkspaceFile

    settings.MEDIA_ROOT = tmp_path
    ws, other = Workspace.objects.create(name="A"), Workspace.objects.create(name="B")
    mine = WorkspaceFile.objects.create(
        workspace=ws,
        name="report.csv",
        content_type="text/csv",
        size=6,
        file=ContentFile(b"a,b\n1,", name="report.csv"),
    )
    theirs = WorkspaceFile.objects.create(
        workspace=other, name="x.csv", file=ContentFile(b"x", name="x.csv")
    )
    context = SimpleNamespace(workspace=ws)
    fields = {"from": "a@kiln.test", "to": "b@example.com", "attachments": [mine.as_reference()]}
    smtp.execute(smtp_server.settings(), "send_email", fields, context)
    (attachment,) = smtp_server.received[0].message.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content()) == ("report.csv", "a,b\n1,")

    fields["attachments"] = [theirs.as_reference()]
    with pytest.raises(FieldError, match=f"no file with id {theirs.pk}"):
        smtp.execute(smtp_server.settings(), "send_email", fields, context)
    assert len(smtp_server.received) == 1


def test_over_starttls_with_auth(smtp_factory, trust_test_ca):
    server = smtp_factory(security=Security.STARTTLS, users={"mailer": "pw-1"})
    smtp.execute(server.settings(), "send_email", {"from": "a@kiln.test", "to": "b@example.com"})
    assert server.received[0].rcpt_tos == ["b@example.com"]


def test_over_implicit_tls_with_auth(smtp_factory, trust_test_ca):
    server = smtp_factory(security=Security.SSL, users={"mailer": "pw-1"})
    smtp.execute(server.settings(), "send_email", {"from": "a@kiln.test", "to": "b@example.com"})
    assert len(server.received) == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("to", "not-an-address", "To email(s) has an invalid address"),
        ("to", "ann@example.com, bob@", "To email(s) has an invalid address"),
        ("cc", "alice@x)<bob@y>", "CC email(s) has an invalid address"),
        ("bcc", ["ok@example.com", "bad@@example.com"], "BCC email(s) has an invalid address"),
        ("from", "a@kiln.test, b@kiln.test", "From email takes one address, not 2"),
        ("to", '"ceo@kiln.test" <evil@attacker.test>', "a name that looks like another address"),
        ("to", "", "To email(s) is required"),
        ("from", None, "From email is required"),
    ],
)
def test_it_refuses_invalid_addresses(smtp_server, field, value, message):
    with pytest.raises(FieldError, match=re.escape(message)) as caught:
        send(smtp_server, **{field: value})
    assert caught.value.field == field
    assert smtp_server.handler.transactions == 0


def test_reply_to_must_be_valid_when_toggled(smtp_server):
    with pytest.raises(FieldError, match="Reply to email is required") as caught:
        send(smtp_server, set_reply_to=True, reply_to="")
    assert caught.value.field == "reply_to"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Hi\r\nBcc: victim@example.com"),
        ("subject", "Hi\nX-Injected: 1"),
        ("subject", "nul\x00byte"),
        ("from", "app@kiln.test\r\nBcc: victim@example.com"),
        ("to", "ann@example.com\nbcc: victim@example.com"),
        ("reply_to", "a@kiln.test\r\nX: y"),
        ("from_name", "Kiln\r\nBcc: victim@example.com"),
    ],
)
def test_it_refuses_header_injection(smtp_server, field, value):
    extra = {"set_reply_to": True} if field == "reply_to" else {}
    with pytest.raises(FieldError, match="must not contain line breaks") as caught:
        send(smtp_server, **{field: value}, **extra)
    assert caught.value.field == field
    assert smtp_server.handler.transactions == 0


def test_it_refuses_a_line_break_in_an_attachment_name(smtp_server):
    bad = {
        "name": "a\r\nContent-Type: text/html.png",
        "type": "image/png",
        "data": data_url("image/png", PNG),
    }
    with pytest.raises(FieldError, match="must not contain line breaks") as caught:
        send(smtp_server, attachments=[bad])
    assert caught.value.field == "attachments"


def test_it_names_an_attachment_whose_data_does_not_decode(smtp_server):
    bad = {"name": "broken.png", "type": "image/png", "data": "data:image/png;base64,@@@"}
    with pytest.raises(FieldError, match="Attachment 'broken.png': its data is not valid base64"):
        send(smtp_server, attachments=[bad])
    assert smtp_server.handler.transactions == 0


def test_it_refuses_a_server_path_as_attachment(smtp_server):
    with pytest.raises(FieldError, match="is not a file"):
        send(smtp_server, attachments=["/etc/passwd"])


def test_it_refuses_attachments_over_the_limit(smtp_server, settings):
    settings.KILN_SMTP_MAX_ATTACHMENT_BYTES = 1000
    big = {"name": "big.bin", "data": data_url("application/octet-stream", b"x" * 1001)}
    with pytest.raises(FieldError, match="over the limit of 1,000 bytes"):
        send(smtp_server, attachments=[big])


def test_it_refuses_too_many_recipients(smtp_server, settings):
    settings.KILN_SMTP_MAX_RECIPIENTS = 3
    with pytest.raises(FieldError, match="4 recipients in To, CC and BCC, over the limit of 3"):
        send(smtp_server, to="a@x.test,b@x.test", cc="c@x.test", bcc="d@x.test")


def test_attachment_names_lose_their_path(smtp_server):
    evil = {"name": "../../etc/passwd", "type": "text/plain", "data": "data:,hello"}
    send(smtp_server, attachments=[evil])
    (attachment,) = smtp_server.received[0].message.iter_attachments()
    assert attachment.get_filename() == "passwd"


def test_a_refused_recipient_is_named_and_nothing_is_sent(smtp_server):
    smtp_server.refuse("ghost@example.com")
    with pytest.raises(PluginError) as caught:
        send(smtp_server, to="ann@example.com, ghost@example.com")
    assert caught.value.permanent
    assert "ghost@example.com: 550 5.1.1 No such user here" in caught.value.message
    assert smtp_server.received == []


def test_a_temporarily_refused_recipient_is_transient(smtp_server):
    smtp_server.refuse("busy@example.com", "450 4.2.1 Mailbox busy")
    with pytest.raises(TransientError, match="busy@example.com: 450"):
        send(smtp_server, to="busy@example.com")


def test_a_5xx_data_reply_is_permanent_with_the_server_text(smtp_server):
    smtp_server.reply_to_data("554 5.7.1 Message rejected as spam")
    with pytest.raises(PluginError, match="554 5.7.1 Message rejected as spam") as caught:
        send(smtp_server)
    assert caught.value.permanent


def test_a_4xx_data_reply_is_transient(smtp_server):
    smtp_server.reply_to_data("451 4.3.0 Try again later")
    with pytest.raises(TransientError, match="451 4.3.0 Try again later"):
        send(smtp_server)


def test_the_server_down_is_a_transient_error():
    from datasources.plugins.smtp.config import Auth, SmtpSettings

    down = SmtpSettings(host="127.0.0.1", port=free_port(), security="none", auth=Auth.NONE)
    with pytest.raises(TransientError, match="Connection refused"):
        smtp.execute(down, "send_email", {"from": "a@kiln.test", "to": "b@example.com"})


def test_a_silent_server_times_out(silent_server):
    from datasources.plugins.smtp.config import Auth, SmtpSettings

    slow = SmtpSettings(
        host="127.0.0.1", port=silent_server.port, security="none", auth=Auth.NONE, timeout=1
    )
    with pytest.raises(TransientError, match="Timed out after 1 s while waiting for the server"):
        smtp.execute(slow, "send_email", {"from": "a@kiln.test", "to": "b@example.com"})


def test_a_connection_lost_after_data_is_unknown(smtp_server):
    async def hang_up(server, session, envelope):
        server.transport.close()

    smtp_server.handler.handle_DATA = hang_up
    with pytest.raises(DeliveryUnknown, match="may or may not have been delivered"):
        send(smtp_server)
