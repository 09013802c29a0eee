"""Send email's message fields against the real SMTP fixture: headers that parse back as
written, an HTML body beside the text body, custom headers, large data-URL attachments
through the run API."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from types import SimpleNamespace

import pytest
from django.test import override_settings

from datasources.errors import FieldError
from datasources.plugins import get_plugin
from datasources.plugins.smtp import transport
from datasources.plugins.smtp.message import build_email, display_name
from queries.models import ApiToken
from tests.integration.test_editor_queries import HTMX, form_data, section, url
from tests.support.apps import make_app, welcome_inputs
from tests.unit.test_smtp_header_encoding import random_text

smtp = get_plugin("smtp")


def send(server, **fields):
    values = {"from": "app@kiln.test", "to": "ann@example.com", "subject": "Hi", "body": "Hello"}
    values.update(fields)
    smtp.execute(server.settings(), "send_email", values)
    return server.received[-1].message


def text_of(message, subtype: str) -> str:
    return message.get_body((subtype,)).get_content().replace("\r\n", "\n")


# ------------------------------------------------------------ headers as written


@pytest.mark.parametrize(
    ("subject", "name"),
    [
        ("Grüße «Kiln» 😀 日本語のテキスト Привет мир naïve שלום 🎉 " * 4, "Zoë «Z» 😀 Ünïcødé"),
        ("=?utf-8?q?not_an_encoded_word?= and  two  spaces", "=?utf-8?b?SGk=?="),
        ("مرحبا 'single' \"double\" 中文 " * 8, '"Quoted" Name, Jr.'),
    ],
)
def test_mixed_script_headers_arrive_as_written(smtp_server, subject, name):
    message = send(
        smtp_server,
        **{"from": "app@kiln.test", "from_name": name, "subject": subject, "cc": "Zoë <z@x.test>"},
    )
    assert str(message["Subject"]) == subject
    assert message["From"].addresses[0].display_name == name
    assert message["Cc"].addresses[0].display_name == "Zoë"


def test_a_200_character_mixed_script_subject_arrives_as_written(smtp_server):
    subject = ("Grüße «Kiln» 😀 日本語 Привет мир naïve שלום 🎉 " * 6)[:200]
    assert len(subject) == 200
    message = send(smtp_server, subject=subject)
    assert str(message["Subject"]) == subject


def test_500_random_mixed_script_subjects_arrive_as_written(smtp_server):
    """Through the real server, over one connection: what is received parses back to
    what was given, subject and display name."""
    rng = random.Random(13)
    sent = []
    with transport.connection(smtp_server.settings()) as session:
        for _ in range(500):
            subject = random_text(rng, rng.randint(1, 300))
            name = display_name(random_text(rng, rng.randint(1, 60))) or "x"
            email = build_email(
                {"from": "app@kiln.test", "from_name": name, "to": "Ann <ann@example.com>"}
                | {"subject": subject, "body": "Hello"}
            )
            session.send(email.sender, email.recipients, email.as_bytes(), smtputf8=email.smtputf8)
            sent.append((subject, name))
    received = smtp_server.wait_for(500)
    for (subject, name), got in zip(sent, received, strict=True):
        assert str(got.message["Subject"]) == subject
        assert got.message["From"].addresses[0].display_name == name


# ------------------------------------------------------------ HTML body


def test_a_text_body_and_an_html_body_go_as_alternatives(smtp_server):
    message = send(smtp_server, body="Hello Ann, in text.", html_body="<p>Hello <b>Ann</b></p>")
    assert message.get_content_type() == "multipart/alternative"
    assert text_of(message, "plain") == "Hello Ann, in text.\n"
    assert text_of(message, "html") == "<p>Hello <b>Ann</b></p>\n"


def test_an_html_body_alone_gets_a_text_part_derived_from_it(smtp_server):
    message = send(smtp_server, body="", html_body="<p>Hello <b>Ann</b></p>")
    assert text_of(message, "plain") == "Hello Ann\n"


def test_an_html_body_with_body_type_html_is_refused_naming_it():
    with pytest.raises(FieldError) as caught:
        smtp.preview(
            "send_email",
            {"from": "a@kiln.test", "to": "b@kiln.test", "body_type": "html", "html_body": "<p>x"},
        )
    assert caught.value.field == "html_body"
    assert "Body type" in caught.value.message


def test_the_preview_shows_both_bodies_and_the_custom_headers():
    preview = smtp.preview(
        "send_email",
        {
            "from": "a@kiln.test",
            "to": "b@kiln.test",
            "body": "Text version",
            "html_body": "<p>HTML version</p>",
            "headers": {"X-Priority": "1"},
        },
    )
    assert preview["text"] == "Text version\n"
    assert preview["html"] == "<p>HTML version</p>\n"
    assert ("X-Priority", "1") in preview["headers"]


# ------------------------------------------------------------ custom headers

UNSUBSCRIBE = "<https://example.com/unsubscribe?id=42&token=abc>, <mailto:leave@example.com>"


def test_custom_headers_arrive_exactly(smtp_server):
    headers = {
        "List-Unsubscribe": UNSUBSCRIBE,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "X-Priority": 1,
        "Importance": "high",
        "X-Reference-Id": "order «42» 😀 =?utf-8?q?x?=",
    }
    message = send(smtp_server, headers=json.dumps(headers))
    for name, value in headers.items():
        assert message.get_all(name) == [str(value)]


def test_custom_headers_as_a_bound_list_of_pairs(smtp_server):
    pairs = [{"name": "X-Campaign", "value": "spring"}, {"name": "Keywords", "value": "a, b"}]
    message = send(smtp_server, headers=pairs)
    assert (message["X-Campaign"], message["Keywords"]) == ("spring", "a, b")


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"Bcc": "spy@example.com"}, "Bcc"),
        ({"content-type": "text/html"}, "content-type"),
        ({"X-Kiln-Sandbox-Original-Recipients": "a@b.test"}, "X-Kiln-Sandbox-Original-Recipients"),
        ({"x-kiln-anything": "1"}, "x-kiln-anything"),
        ({"Bad Name:": "1"}, "Bad Name:"),
        ({"Subject": "again"}, "Subject"),
        ({"DKIM-Signature": "v=1"}, "DKIM-Signature"),
        ([{"name": "X-A", "value": "1"}, {"name": "x-a", "value": "2"}], "x-a"),
        ({"X-Evil": "1\r\nBcc: spy@example.com"}, "X-Evil"),
        ({"X-Evil": "=?utf-8?q?1=0D=0ABcc:_spy@example.com?="}, "X-Evil"),
        ({"X-List": ["a"]}, "X-List"),
        ({"X-Long": "x" * 901}, "X-Long"),
        ({f"X-{n}": "1" for n in range(21)}, "21 headers"),
        ("{not json", "not valid JSON"),
        ([["X-A", "1"]], "item #1"),
    ],
)
def test_bad_custom_headers_are_refused_naming_them(headers, named):
    with pytest.raises(FieldError) as caught:
        smtp.preview("send_email", {"from": "a@kiln.test", "to": "b@kiln.test", "headers": headers})
    assert caught.value.field == "headers"
    assert named in caught.value.message


@pytest.mark.parametrize(
    ("header", "advice"),
    [
        ("Bcc", "use the BCC field"),
        ("cc", "use the CC field"),
        ("To", "use the To field"),
        ("Reply-To", "use the Reply-To field"),
        ("Subject", "use the Subject field"),
        ("From", "use the From field"),
        ("Content-Type", "Body type"),
        ("Received", "receiving server writes it"),
    ],
)
def test_a_forbidden_header_says_what_to_use_instead_and_no_repo_file(header, advice):
    with pytest.raises(FieldError) as caught:
        smtp.preview(
            "send_email", {"from": "a@kiln.test", "to": "b@kiln.test", "headers": {header: "x"}}
        )
    assert caught.value.field == "headers"
    assert header in caught.value.message
    assert advice in caught.value.message
    assert "docs/" not in caught.value.message


# ------------------------------------------------------------ the run API


@pytest.fixture
def api(team, smtp_server, client):
    app, query = make_app(team.workspace, smtp_server.port)
    token = ApiToken.issue(team.teammate, "tests")[1]

    def post(body: str | bytes):
        return client.post(
            f"/api/v1/apps/{app.slug}/queries/{query.name}/runs",
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )

    post.query = query
    return post


@pytest.mark.django_db(transaction=True)
def test_a_forbidden_custom_header_is_a_400_naming_it(api, smtp_server):
    api.query.fields = {**api.query.fields, "headers": '{"Bcc": "spy@example.com"}'}
    api.query.save()
    response = api(json.dumps({"inputs": welcome_inputs()}))
    assert response.status_code == 400
    assert response.json()["field"] == "headers"
    assert "Bcc" in response.json()["error"]
    assert smtp_server.received == []


@pytest.mark.django_db(transaction=True)
def test_bound_custom_headers_and_html_body_through_the_run_api(api, smtp_server):
    api.query.fields = {
        **api.query.fields,
        "body_type": "text",
        "body": "Hello << form1.data.name >>",
        "html_body": "<p>You wrote: << form1.data.message >></p>",
        "headers": "<< {'X-Reference-Id': form1.data.name ~ '-42'} >>",
    }
    api.query.save()
    assert api(json.dumps({"inputs": welcome_inputs()})).status_code == 202
    message = smtp_server.received[0].message
    assert message["X-Reference-Id"] == "Ann-42"
    assert text_of(message, "plain") == "Hello Ann\n"
    # Bound into the HTML body: escaped.
    assert text_of(message, "html") == "<p>You wrote: Hi &lt;there&gt;</p>\n"


@pytest.mark.django_db(transaction=True)
def test_a_10_mb_data_url_attachment_arrives_intact(api, smtp_server):
    content = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    url = "data:application/octet-stream;base64," + base64.b64encode(content).decode()
    files = {"files": [{"name": "big.bin", "type": "application/octet-stream", "data": url}]}
    response = api(json.dumps({"inputs": welcome_inputs(files1=files)}))
    assert response.status_code == 202, response.content[:500]
    (attachment,) = smtp_server.received[0].message.iter_attachments()
    assert attachment.get_filename() == "big.bin"
    received = attachment.get_content()
    assert hashlib.sha256(received).digest() == hashlib.sha256(content).digest()


@pytest.mark.django_db(transaction=True)
@override_settings(KILN_API_MAX_BODY_BYTES=10_000)
def test_a_json_body_over_the_limit_is_a_json_413_pointing_to_multipart(api, smtp_server):
    response = api(json.dumps({"inputs": welcome_inputs(), "pad": "x" * 10_000}))
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["field"] == "body"
    assert "10,000 bytes" in body["error"] and "multipart/form-data" in body["error"]
    assert smtp_server.received == []


@pytest.mark.django_db(transaction=True)
@override_settings(KILN_SMTP_MAX_ATTACHMENT_BYTES=1000)
def test_attachments_over_the_limit_name_the_field_and_multipart(api, smtp_server):
    url = "data:text/plain;base64," + base64.b64encode(b"x" * 2000).decode()
    files = {"files": [{"name": "a.txt", "data": url}]}
    response = api(json.dumps({"inputs": welcome_inputs(files1=files)}))
    assert response.status_code == 400
    assert response.json()["field"] == "attachments"
    assert "multipart/form-data" in response.json()["error"]


# ------------------------------------------------------------ the query editor


@pytest.fixture
def editor(team, smtp_server, client):
    app, query = make_app(team.workspace, smtp_server.port)
    client.force_login(team.teammate)
    return SimpleNamespace(app=app, query=query, server=smtp_server)


@pytest.mark.django_db(transaction=True)
def test_a_literal_forbidden_header_is_a_form_error_and_nothing_is_saved(client, editor):
    before = dict(editor.query.fields)
    response = client.post(
        url("query_save", editor.app, "send_welcome"),
        form_data(editor.query, headers='{"X-Kiln-Sandbox-Original-Recipients": "a@b.test"}'),
        headers=HTMX,
    )
    assert response.status_code == 422
    assert "X-Kiln-Sandbox-Original-Recipients cannot be set here" in response.text
    editor.query.refresh_from_db()
    assert editor.query.fields == before


@pytest.mark.django_db(transaction=True)
def test_the_editor_preview_lists_custom_headers_and_both_bodies(client, editor):
    response = client.post(
        url("query_preview", editor.app, "send_welcome"),
        form_data(
            editor.query,
            welcome_inputs(),
            body_type="text",
            body="Hi << form1.data.name >>, in text",
            html_body="<p>Hi << form1.data.name >>, in HTML</p>",
            headers='{"List-Unsubscribe": "<mailto:leave@example.com>", "X-Priority": "1"}',
        ),
        headers=HTMX,
    )
    assert response.status_code == 200
    headers = section(response.text, "qe-headers")
    assert "<dt>List-Unsubscribe</dt><dd>&lt;mailto:leave@example.com&gt;</dd>" in headers
    assert "<dt>X-Priority</dt><dd>1</dd>" in headers
    assert "Hi Ann, in text" in response.text
    assert "Hi Ann, in HTML" in response.text
    assert '<details class="qe-text-details" open>' in response.text
    assert editor.server.received == []
