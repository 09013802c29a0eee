"""Attachments: the content type sent comes from the bytes and the name, never from what
the browser or the binding declared; active types go as application/octet-stream to
download. File picker limits hold on the server for every picker a run reads."""

from __future__ import annotations

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from builder.models import Widget
from builder.publishing import publish
from core.filenames import safe_filename
from core.filetypes import sniffed_type
from datasources.plugins import get_plugin
from queries.models import QueryRun
from tests.support.apps import make_app

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n" + b"hello\n" * 50
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<html><script>alert(1)</script></html>"


def data_url(mime: str, content: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(content).decode()


def sent_parts(server, attachments) -> list:
    fields = {"from": "app@kiln.test", "to": "ann@example.com", "subject": "Hi", "body": "x"}
    get_plugin("smtp").execute(
        server.settings(), "send_email", {**fields, "attachments": attachments}
    )
    (received,) = server.received
    return list(received.message.iter_attachments())


@pytest.mark.parametrize(
    ("name", "declared", "data", "expected"),
    [
        ("page.html", "text/plain", HTML, "application/octet-stream"),
        ("logo.svg", "image/png", SVG, "application/octet-stream"),
        ("page.xhtml", "text/plain", HTML, "application/octet-stream"),
        ("app.js", "text/plain", b"alert(1)", "application/octet-stream"),
        ("photo.pdf", "application/pdf", PNG, "image/png"),
        ("notes.txt", "text/html", b"plain words", "text/plain"),
        ("report.pdf", "text/html", PDF, "application/pdf"),
        ("noext", "text/html", b"<b>x</b>", "application/octet-stream"),
    ],
)
def test_the_sent_type_comes_from_the_bytes_and_the_name(
    smtp_server, name, declared, data, expected
):
    (part,) = sent_parts(
        smtp_server, [{"name": name, "type": declared, "data": data_url(declared, data)}]
    )
    assert part.get_content_type() == expected
    assert part.get_content_disposition() == "attachment"
    assert part.get_content() == data if isinstance(part.get_content(), bytes) else True


def test_an_uploaded_file_s_declared_type_is_ignored(smtp_server):
    upload = SimpleUploadedFile("x.svg", SVG, content_type="image/png")
    (part,) = sent_parts(smtp_server, [upload])
    assert part.get_content_type() == "application/octet-stream"
    assert part.get_content_disposition() == "attachment"


@pytest.mark.parametrize(
    "name",
    ["a\u202egpj.exe", "a\u200bb.txt", "a\u2028b.txt", "a\x07b.txt", "../../etc/passwd", ".."],
)
def test_names_lose_control_format_and_bidi_characters(name):
    cleaned = safe_filename(name, "fallback")
    assert all(ch.isprintable() and ch not in "/\\" for ch in cleaned), cleaned
    assert not cleaned.startswith(".")


def test_sniffing_reads_a_bounded_prefix():
    assert sniffed_type("big.png", PNG + b"\0" * 10_000_000) == "image/png"


# ---------------------------------------------------------------- file picker limits


@pytest.fixture
def picker_app(team, smtp_server):
    """files1 sits outside form1; the button inside form1 runs a query reading it."""
    app, query = make_app(team.workspace, smtp_server.port)
    page = app.pages.get()
    files1 = page.widgets.get(name="files1")
    files1.properties = {
        "label": "Contract",
        "max_file_size_mb": 0.001,
        "allowed_types": [".pdf"],
        "max_files": 1,
    }
    files1.save()
    Widget.objects.create(
        page=page,
        name="submit",
        type="button",
        parent=page.widgets.get(name="form1"),
        events={"click": [{"action": "run_query", "query": "send_welcome"}]},
    )
    Widget.objects.create(
        page=page,
        name="outside",
        type="button",
        events={"click": [{"action": "run_query", "query": "send_welcome"}]},
    )
    query.fields = {
        "from": "app@kiln.test",
        "to": "ann@example.com",
        "subject": "Contract",
        "attachments": "<< files1.files >>",
    }
    query.save()
    publish(app, team.owner)
    return app


def click(client, app, widget: str, files: list):
    return client.post(
        f"/apps/{app.slug}/home/events",
        {
            "widget": widget,
            "event": "click",
            "name_input": "Ann",
            "email_input": "ann@example.com",
            "message_input": "Hi",
            "files1": files,
        },
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("widget", ["submit", "outside"])
@pytest.mark.parametrize(
    ("files", "says"),
    [
        ([("big.pdf", PDF * 10)], "MB limit"),
        ([("x.html", HTML)], "not an allowed file type"),
        ([("a.pdf", b"%PDF-1.4"), ("b.pdf", b"%PDF-1.4")], "at most 1 file"),
    ],
)
def test_a_picker_outside_the_form_is_checked_on_the_server(
    client, team, smtp_server, picker_app, widget, files, says
):
    client.force_login(team.viewer)
    # Each declared as a PDF by the "browser": the server does not believe it.
    uploads = [SimpleUploadedFile(name, data, "application/pdf") for name, data in files]
    response = click(client, picker_app, widget, uploads)
    assert response.status_code == 200
    assert "kiln-toast-error" in response.text
    assert "Contract" in response.text and says in response.text
    assert not QueryRun.objects.exists()
    assert smtp_server.received == []


@pytest.mark.django_db(transaction=True)
def test_a_picker_within_its_limits_sends(client, team, smtp_server, picker_app):
    client.force_login(team.viewer)
    response = click(
        client, picker_app, "submit", [SimpleUploadedFile("ok.pdf", b"%PDF-1.4 hi", "text/html")]
    )
    assert "kiln-toast-error" not in response.text
    run = QueryRun.objects.get()
    run.wait(10)
    run.refresh_from_db()
    assert run.status == "sent", run.error
    (part,) = smtp_server.received[0].message.iter_attachments()
    assert (part.get_filename(), part.get_content_type()) == ("ok.pdf", "application/pdf")


@pytest.mark.django_db(transaction=True)
def test_a_picker_allowing_several_files_takes_several(client, team, smtp_server, picker_app):
    # "Allow several files" ticked, "Max files" left at its default of one.
    files1 = Widget.objects.get(page__app=picker_app, name="files1")
    files1.properties = {**files1.properties, "multiple": True, "max_file_size_mb": 1}
    files1.save()
    publish(picker_app, team.owner)
    client.force_login(team.viewer)
    page = client.get(f"/apps/{picker_app.slug}/home/").text
    assert 'data-max-files="0"' in page and " multiple " in page
    uploads = [SimpleUploadedFile(f"{n}.pdf", b"%PDF-1.4 " + n.encode(), "") for n in "abc"]
    response = click(client, picker_app, "submit", uploads)
    assert "kiln-toast-error" not in response.text, response.text
    run = QueryRun.objects.get()
    run.wait(10)
    run.refresh_from_db()
    assert run.status == "sent", run.error
    names = [p.get_filename() for p in smtp_server.received[0].message.iter_attachments()]
    assert names == ["a.pdf", "b.pdf", "c.pdf"]
