"""Inline images: sent in a multipart/related part with the HTML body, each part's
Content-ID the one the body's cid: refers to; through the run API (the stored message,
its images streamed from the run's files), a resend, the preview and every bad input."""

from __future__ import annotations

import base64
import re
import time
from email.message import EmailMessage

import pytest
from django.urls import reverse

from core.mail import FRAME_TOTAL_BYTES, ParsedMail, with_data_urls
from datasources.errors import FieldError
from datasources.plugins import get_plugin
from datasources.plugins.smtp import inline
from datasources.plugins.smtp.compose import build_email
from devmailbox.models import MailboxMessage
from queries import execution, outbox
from queries.execution import create_run
from queries.models import ApiToken, QueryRun, RunStatus
from queries.resend import resend
from tests.support.apps import (
    make_app,
    picked,
    post_preview,
    post_run,
    welcome_inputs,
)

pytestmark = pytest.mark.django_db(transaction=True)

smtp = get_plugin("smtp")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
GIF = b"GIF89a" + bytes(range(200))
PDF = b"%PDF-1.4\n" + b"x" * 100
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML_BODY = '<p>Hello <img src="cid:logo.png" alt="Logo"></p>'


def fields(**overrides) -> dict:
    values = {
        "from": "app@kiln.test",
        "to": "ann@example.com",
        "subject": "Hi",
        "body": HTML_BODY,
        "body_type": "html",
        "inline_images": [picked("logo.png", PNG)],
    }
    values.update(overrides)
    return values


def related_parts(message):
    """(the HTML of the related part, {Content-ID: image part}) of a received message."""
    (related,) = [p for p in message.walk() if p.get_content_type() == "multipart/related"]
    html, *images = related.iter_parts()
    assert html.get_content_type() == "text/html"
    return html.get_content(), {p["Content-ID"].strip("<>"): p for p in images}


@pytest.fixture
def contact(team, smtp_server):
    app, query = make_app(team.workspace, smtp_server.port)
    query.fields = {
        **query.fields,
        "body": '<p>Hello << form1.data.name >></p><img src="cid:logo.png">',
        "inline_images": "<< files1.files >>",
        "attachments": [picked("terms.pdf", PDF, "application/pdf")],
    }
    query.save()
    return app, query


def test_an_inline_images_cid_matches_its_part_through_the_run_api(
    client, team, contact, smtp_server
):
    app, _ = contact
    token = ApiToken.issue(team.teammate, "tests")[1]
    inputs = welcome_inputs(files1={"files": [picked("logo.png", PNG)]})
    response = post_run(client, app, inputs, token)
    assert response.status_code == 202, response.json()
    (received,) = smtp_server.received
    message = received.message
    # mixed(alternative(text, related(html, image)), attachment)
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    text, related = alternative.iter_parts()
    assert (text.get_content_type(), related.get_content_type()) == (
        "text/plain",
        "multipart/related",
    )
    html, images = related_parts(message)
    assert re.findall(r'src="cid:([^"]+)"', html) == ["logo.png"]
    image = images["logo.png"]
    assert image.get_content_type() == "image/png"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == PNG
    assert (attachment.get_filename(), attachment.get_content()) == ("terms.pdf", PDF)
    # The image is one of the run's files, never in its stored fields or message bytes.
    run = QueryRun.objects.get(pk=response.json()["id"])
    assert [a.name for a in run.attachments.order_by("position")] == ["logo.png", "terms.pdf"]
    assert "inline_images" not in run.fields
    assert base64.b64encode(PNG[:57]) not in bytes(run.payload)


def test_a_resent_run_sends_its_inline_images_again(team, contact, smtp_server, monkeypatch):
    monkeypatch.setattr(execution, "enqueue_new", lambda run_id, due=None: True)  # held
    _, query = contact
    run = create_run(
        query, team.teammate, welcome_inputs(files1={"files": [picked("logo.png", PNG)]})
    )
    QueryRun.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)
    again = resend(QueryRun.objects.get(pk=run.pk), team.teammate)  # sent on commit
    assert QueryRun.objects.get(pk=again.pk).status == "sent"
    (received,) = smtp_server.received
    _, images = related_parts(received.message)
    assert images["logo.png"].get_content() == PNG
    assert received.message["Message-ID"] == run.payload_meta["message_id"]


def test_a_run_stored_without_its_message_is_built_again_with_its_images_in_place(
    team, contact, smtp_server, monkeypatch
):
    monkeypatch.setattr(execution, "enqueue_new", lambda run_id, due=None: True)  # held
    _, query = contact
    query.fields = {
        **query.fields,
        "body": '<img src="cid:logo.png"><img src="cid:chart@kiln">',
        "attachments": [
            {**picked("chart.png", GIF, "image/gif"), "inline": True, "cid": "chart@kiln"},
            picked("terms.pdf", PDF, "application/pdf"),
        ],
    }
    query.save()
    run = create_run(
        query, team.teammate, welcome_inputs(files1={"files": [picked("logo.png", PNG)]})
    )
    assert run.payload_meta["inline_cids"] == ["chart@kiln", "logo.png"]
    QueryRun.objects.filter(pk=run.pk).update(payload=None)
    outbox.execute_run(run.pk)
    assert QueryRun.objects.get(pk=run.pk).status == RunStatus.SENT
    (received,) = smtp_server.received
    _, images = related_parts(received.message)
    assert {cid: part.get_content() for cid, part in images.items()} == {
        "chart@kiln": GIF,
        "logo.png": PNG,
    }
    attachments = list(received.message.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["terms.pdf"]


def test_an_attachment_marked_inline_keeps_its_cid_and_names_dedupe(smtp_server):
    smtp.execute(
        smtp_server.settings(),
        "send_email",
        fields(
            body='<img src="cid:chart@kiln"><img src="cid:logo.png"><img src="cid:logo-2.png">',
            inline_images=[picked("logo.png", PNG), picked("logo.png", GIF, "image/gif")],
            attachments=[
                {**picked("chart.png", PNG), "inline": True, "cid": "cid:chart@kiln"},
                picked("notes.txt", b"notes", "text/plain"),
            ],
        ),
    )
    message = smtp_server.received[0].message
    _, images = related_parts(message)
    assert sorted(images) == ["chart@kiln", "logo-2.png", "logo.png"]
    assert images["logo-2.png"].get_content() == GIF
    assert [a.get_filename() for a in message.iter_attachments()] == ["notes.txt"]


def test_a_name_with_spaces_and_bidi_characters_gives_a_safe_cid(smtp_server):
    smtp.execute(
        smtp_server.settings(),
        "send_email",
        fields(
            body='<img src="cid:my-logo-v2.png">',
            inline_images=[picked("my logo\u202e v2.png", PNG)],
        ),
    )
    _, images = related_parts(smtp_server.received[0].message)
    assert list(images) == ["my-logo-v2.png"]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        (
            {"inline_images": [picked("terms.pdf", PDF, "application/pdf")]},
            "inline_images",
            "not an image",
        ),
        # SVG may hold script: never inline, whatever the declared type.
        (
            {"inline_images": [picked("logo.svg", SVG, "image/svg+xml")]},
            "inline_images",
            "not an image",
        ),
        # HTML named photo.png: the name says image, the bytes do not.
        (
            {"inline_images": [picked("photo.png", b"<html><script>x</script>", "image/png")]},
            "inline_images",
            "not an image",
        ),
        ({"body": "Hello", "body_type": "text"}, "inline_images", "or fill HTML body"),
        ({"body": '<img src="cid:missing.png">'}, "body", "cid:missing.png"),
        ({"inline_images": [picked("logo\r\nX-Evil: 1.png", PNG)]}, "inline_images", "line breaks"),
        (
            {"inline_images": [{"name": "logo.png", "data": "data:image/png;base64,@@"}]},
            "inline_images",
            "base64",
        ),
        ({"inline_images": ["/etc/passwd"]}, "inline_images", "is not a file"),
        (
            {"attachments": [{**picked("a.png", PNG), "inline": True, "cid": "a b\r\n"}]},
            "attachments",
            "cid",
        ),
        (
            {
                "attachments": [
                    {**picked("a.png", PNG), "inline": "true", "cid": "logo.png"},
                ],
                "inline_images": [],
                "body": '<img src="cid:logo.png">',
            },
            None,
            None,
        ),
    ],
)
def test_bad_inline_images_name_the_field_and_send_nothing(smtp_server, overrides, field, words):
    if field is None:  # the control: a valid variant is sent
        smtp.execute(smtp_server.settings(), "send_email", fields(**overrides))
        assert smtp_server.handler.transactions == 1
        return
    with pytest.raises(FieldError) as caught:
        smtp.execute(smtp_server.settings(), "send_email", fields(**overrides))
    assert caught.value.field == field
    assert words in caught.value.message
    assert smtp_server.handler.transactions == 0


def test_text_that_mentions_cid_is_not_a_reference(smtp_server):
    smtp.execute(
        smtp_server.settings(),
        "send_email",
        fields(body="<p>Write cid:logo.png in src.</p>", inline_images=[]),
    )
    assert smtp_server.handler.transactions == 1


def test_a_body_built_to_make_the_reference_scan_backtrack_is_read_in_linear_time():
    body = ("src=" + " " * 100_000 + "x ") * 3 + 'url(  " ' + " " * 100_000
    started = time.perf_counter()
    assert inline.references(body + '<img src = " cid:a.png">') == ["a.png"]
    assert time.perf_counter() - started < 0.5


def test_inline_images_count_in_the_attachment_limit(smtp_server, settings):
    settings.KILN_SMTP_MAX_ATTACHMENT_BYTES = len(PNG) + 10
    with pytest.raises(FieldError) as caught:
        smtp.execute(
            smtp_server.settings(),
            "send_email",
            fields(attachments=[picked("notes.txt", b"x" * 20, "text/plain")]),
        )
    assert caught.value.field == "inline_images"
    assert "over the limit" in caught.value.message


def test_the_run_api_answers_400_naming_the_field(client, team, contact, smtp_server):
    app, _ = contact
    token = ApiToken.issue(team.teammate, "tests")[1]
    inputs = welcome_inputs(files1={"files": [picked("terms.pdf", PDF, "application/pdf")]})
    response = post_run(client, app, inputs, token)
    assert response.status_code == 400
    assert response.json()["field"] == "inline_images"
    assert not QueryRun.objects.exists()
    assert smtp_server.handler.transactions == 0


def test_the_preview_shows_the_image_and_its_cid_to_copy(client, team, contact, smtp_server):
    app, query = contact
    client.force_login(team.teammate)
    test_values = welcome_inputs(files1={"files": [picked("logo.png", PNG)]})
    response = post_preview(client, app, query, test_values, attachments="")
    assert response.status_code == 200, response.text
    text = response.text
    assert '<code class="qe-cid">cid:logo.png</code>' in text
    assert 'data-copy="cid:logo.png"' in text
    # In the frame the image is a data: URL, which the editor's CSP allows for images.
    srcdoc = re.search(r'srcdoc="([^"]*)"', text).group(1)
    assert "src=&quot;data:image/png;base64," + base64.b64encode(PNG)[:40].decode() in srcdoc
    assert "cid:logo.png" not in srcdoc
    img_src = re.search(r"img-src ([^;]*)", response["Content-Security-Policy"]).group(1)
    assert "data:" in img_src.split()
    assert smtp_server.handler.transactions == 0


def test_the_dev_mailbox_frame_shows_inline_images(client, settings, django_user_model):
    settings.KILN_DEVMAILBOX = True
    email = build_email(fields())
    stored = MailboxMessage.receive("app@kiln.test", ["ann@example.com"], email.as_bytes())
    client.force_login(django_user_model.objects.create_user("staff", is_staff=True))
    response = client.get(reverse("devmailbox:html", args=[stored.pk]))
    assert response.status_code == 200
    assert 'src="data:image/png;base64,' + base64.b64encode(PNG).decode() + '"' in response.text
    assert "img-src data:;" in response["Content-Security-Policy"]


def crafted_mail(content_type: str) -> bytes:
    """A received message whose image part declares ``content_type`` as it is."""
    return (
        b"Content-Type: multipart/related; boundary=b\r\n\r\n--b\r\n"
        b'Content-Type: text/html\r\n\r\n<img src="cid:a">\r\n--b\r\n'
        b"Content-Type: " + content_type.encode() + b"\r\nContent-ID: <a>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(PNG) + b"\r\n--b--\r\n"
    )


@pytest.mark.parametrize(
    "content_type", ['image/png"onerror="alert(1)', 'image/"x onerror=alert(1) "', "image/bmp"]
)
def test_a_received_image_type_never_leaves_the_src_attribute(
    client, settings, django_user_model, content_type
):
    raw = crafted_mail(content_type)
    assert ParsedMail(raw).html_with_images == '<img src="cid:a">'
    settings.KILN_DEVMAILBOX = True
    stored = MailboxMessage.receive("app@kiln.test", ["ann@example.com"], raw)
    client.force_login(django_user_model.objects.create_user("staff", is_staff=True))
    response = client.get(reverse("devmailbox:html", args=[stored.pk]))
    assert "onerror" not in response.text
    assert "data:image" not in response.text


def test_a_frame_holds_its_images_up_to_a_total_budget():
    megabyte = b"\0" * (1024 * 1024)
    images = {f"i{n}": ("image/png", megabyte) for n in range(12)}
    html = "".join(f'<img src="cid:i{n}">' for n in range(12)) + '<img src="cid:i0">'
    framed = with_data_urls(html, images)
    # Four images make the 4 MB; the rest, and a second reference to i0, stay cid:.
    assert framed.shown == {"i0", "i1", "i2", "i3"}
    assert framed.html.count("data:image/png;base64,") == FRAME_TOTAL_BYTES // len(megabyte)
    assert framed.html.endswith('<img src="cid:i0">')
    assert len(framed.html) < FRAME_TOTAL_BYTES * 4 // 3 + 1000
    assert '<img src="cid:i11">' in framed.html


def test_the_preview_says_which_images_the_budget_left_out(
    client, team, contact, smtp_server, monkeypatch
):
    monkeypatch.setattr("core.mail.FRAME_TOTAL_BYTES", len(PNG) + 1)
    app, query = contact
    client.force_login(team.teammate)
    test_values = welcome_inputs(
        files1={"files": [picked("logo.png", PNG), picked("logo.png", PNG)]}
    )
    body = '<img src="cid:logo.png"><img src="cid:logo-2.png">'
    response = post_preview(client, app, query, test_values, body=body, attachments="")
    assert response.status_code == 200, response.text
    assert response.text.count("data:image/png;base64,") == 1
    (note,) = re.findall(r"cid:(logo[^<]*)</code>[^\n]*not shown in this preview", response.text)
    assert note == "logo-2.png"


def test_a_received_svg_is_never_put_in_place():
    message = EmailMessage()
    message.set_content('<img src="cid:art"><img src="cid:logo">', subtype="html")
    message.add_related(SVG, "image", "svg+xml", cid="<art>")
    message.add_related(PNG, "image", "png", cid="<logo>")
    html = ParsedMail(message.as_bytes()).html_with_images
    assert '<img src="cid:art">' in html
    assert '<img src="data:image/png;base64,' in html
