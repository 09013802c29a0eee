"""What the outbox run page, the dev mailbox and the query editor show of a message with
inline images, an attachment and a calendar invite: the images in place in the HTML
frame and listed apart, the invite as when/where/who, invite.ics the one attachment."""

from __future__ import annotations

import base64
import json
import re
from email.message import EmailMessage

import pytest
from django.urls import reverse

from core import invites
from datasources.plugins.smtp.compose import build_email
from devmailbox.models import MailboxMessage
from queries.models import ApiToken, QueryRun
from tests.support.apps import make_app, picked, post_run, welcome_inputs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("staff", is_staff=True)


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
PDF = b"%PDF-1.4\n" + b"x" * 100
INVITE = {
    "invite_start": "2027-01-15T09:00",
    "invite_end": "2027-01-15T10:00",
    "invite_timezone": "Europe/Berlin",
    "invite_location": "Room 4",
}


@pytest.fixture
def invitation(team, smtp_server):
    """An app whose query sends an HTML body showing logo.png, terms.pdf and an invite."""
    app, query = make_app(team.workspace, smtp_server.port)
    query.fields = {
        **query.fields,
        "body": '<p>Hello << form1.data.name >></p><img src="cid:logo.png">',
        "inline_images": "<< files1.files >>",
        "attachments": [picked("terms.pdf", PDF, "application/pdf")],
        **INVITE,
    }
    query.save()
    return app, query


def sent_run(client, team, app) -> QueryRun:
    token = ApiToken.issue(team.teammate, "tests")[1]
    inputs = welcome_inputs(files1={"files": [picked("logo.png", PNG, "image/png")]})
    response = post_run(client, app, inputs, token)
    assert response.status_code == 202, response.json()
    return QueryRun.objects.get(pk=response.json()["id"])


def fields(**overrides) -> dict:
    values = {
        "from": "Kiln <app@kiln.test>",
        "to": "Ann <ann@example.com>",
        "cc": "bob@example.com",
        "subject": "Planning",
        "body": '<p>Hi</p><img src="cid:logo.png">',
        "body_type": "html",
        "inline_images": [picked("logo.png", PNG, "image/png")],
        **INVITE,
    }
    values.update(overrides)
    return values


WHEN = "Fri 15 Jan 2027, 09:00–10:00 (Europe/Berlin); 08:00–09:00 UTC"


def test_the_outbox_frame_shows_the_runs_inline_image_from_its_stored_file(
    client, team, invitation
):
    app, _ = invitation
    run = sent_run(client, team, app)
    client.force_login(team.teammate)
    frame = client.get(reverse("editor:outbox_run_html", args=[team.workspace.slug, run.pk]))
    assert frame.status_code == 200
    assert 'src="data:image/png;base64,' + base64.b64encode(PNG).decode() + '"' in frame.text
    assert "cid:logo.png" not in frame.text
    assert "img-src data:;" in frame["Content-Security-Policy"]


def test_the_outbox_page_lists_images_apart_and_shows_the_invite(client, team, invitation):
    app, _ = invitation
    run = sent_run(client, team, app)
    client.force_login(team.teammate)
    page = client.get(reverse("editor:outbox_run", args=[team.workspace.slug, run.pk])).text
    images = page[page.index("<h2>Inline images") : page.index("<h2>Attachments")]
    attachments = page[page.index("<h2>Attachments") : page.index('id="message"')]
    assert "logo.png" in images and "<code>cid:logo.png</code>" in images
    assert "terms.pdf" in attachments and "logo.png" not in attachments
    # invite.ics, made with the message, is listed as the dev mailbox lists it.
    assert attachments.index("terms.pdf") < attachments.index("<td>invite.ics</td>")
    assert '<h2>Attachments <span class="badge">2</span>' in page
    assert 'aria-label="Calendar invite"' in page
    assert f"<dd>{WHEN}</dd>" in page
    assert "<dt>Where</dt><dd>Room 4</dd>" in page
    assert "Kiln &lt;app@kiln.test&gt;" in page
    assert "ann@example.com (required)" in page


def test_a_merge_rows_page_lists_its_merges_files(client, team, invitation):
    """A merge row's files are stored once with its merge: the row's page lists them."""
    app, _ = invitation
    parent = sent_run(client, team, app)
    row = QueryRun.objects.get(pk=parent.pk)
    child = QueryRun.objects.create(
        workspace=row.workspace,
        app=row.app,
        query_name=row.query_name,
        datasource=row.datasource,
        parent=row,
        row_index=0,
        payload=row.payload,
        payload_meta=row.payload_meta,
        fields=row.fields,
    )
    client.force_login(team.teammate)
    frame = client.get(reverse("editor:outbox_run_html", args=[team.workspace.slug, child.pk]))
    assert "data:image/png;base64," in frame.text
    page = client.get(reverse("editor:outbox_run", args=[team.workspace.slug, child.pk])).text
    assert "<code>cid:logo.png</code>" in page and "terms.pdf" in page


def test_the_dev_mailbox_shows_the_invite_and_lists_images_apart(client, settings, staff_user):
    settings.KILN_DEVMAILBOX = True
    settings.TIME_ZONE = "Europe/Berlin"  # the calendar holds UTC; shown in the site's zone
    email = build_email(fields(attachments=[picked("terms.pdf", PDF, "application/pdf")]))
    stored = MailboxMessage.receive("app@kiln.test", ["ann@example.com"], email.as_bytes())
    # terms.pdf and invite.ics: not the image, not the calendar version of the body.
    assert stored.attachment_count == 2
    assert [a["filename"] for a in stored.attachments] == ["terms.pdf", "invite.ics"]
    client.force_login(staff_user)
    page = client.get(reverse("devmailbox:detail", args=[stored.pk])).text
    assert "attachment-" not in page
    images = page[page.index("<h2>Inline images") : page.index("<h2>Attachments")]
    assert "logo.png" in images and "<code>cid:logo.png</code>" in images
    assert WHEN in page
    assert "Kiln &lt;app@kiln.test&gt;" in page
    listed = client.get(reverse("devmailbox:list")).text
    assert "📎 2<" in listed


def test_an_invite_alone_is_the_one_attachment_in_the_dev_mailbox(settings):
    email = build_email(fields(body="See you", body_type="text", inline_images=[]))
    stored = MailboxMessage.receive("app@kiln.test", ["ann@example.com"], email.as_bytes())
    assert [a["filename"] for a in stored.attachments] == ["invite.ics"]
    assert stored.attachment_count == 1
    index = stored.attachments[0]["index"]
    assert stored.attachment(index)[1].startswith(b"BEGIN:VCALENDAR")


def test_a_received_calendar_that_does_not_parse_is_no_invite(client, settings, staff_user):
    settings.KILN_DEVMAILBOX = True
    message = EmailMessage()
    message["Subject"] = "Odd"
    message.set_content("Hi")
    broken = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:nonsense"
    message.add_alternative(broken, subtype="calendar")
    stored = MailboxMessage.receive("x@example.com", ["ann@example.com"], message.as_bytes())
    client.force_login(staff_user)
    response = client.get(reverse("devmailbox:detail", args=[stored.pk]))
    assert response.status_code == 200
    assert "Calendar invite" not in response.text
    assert stored.attachment_count == 0


def test_a_cid_image_the_body_does_not_use_stays_an_attachment():
    message = EmailMessage()
    message.set_content("<p>No image here</p>", subtype="html")
    message.add_related(PNG, "image", "png", cid="<logo>", filename="logo.png")
    stored = MailboxMessage(raw=message.as_bytes())
    assert [a["filename"] for a in stored.attachments] == ["logo.png"]
    assert stored.mail.inline_images == []


@pytest.mark.parametrize(
    "start, end, zone, expected",
    [
        ("2027-01-15T08:00", "2027-01-15T09:00", "UTC", "Fri 15 Jan 2027, 08:00–09:00 (UTC)"),
        (
            "2027-01-15T22:30",
            "2027-01-16T00:30",
            "UTC",
            "Fri 15 Jan 2027, 22:30 – Sat 16 Jan 2027, 00:30 (UTC)",
        ),
        # Same day in New York, not in UTC: the local day counts.
        (
            "2027-01-15T23:00",
            "2027-01-16T01:00",
            "America/New_York",
            "Fri 15 Jan 2027, 18:00–20:00 (America/New_York); 23:00–01:00 UTC",
        ),
    ],
)
def test_an_invites_time_names_its_day_once_when_it_ends_that_day(start, end, zone, expected):
    from datetime import UTC, datetime

    moments = [datetime.fromisoformat(t).replace(tzinfo=UTC) for t in (start, end)]
    assert invites.when(*moments, zone) == expected


def test_the_preview_lists_invite_ics_and_a_same_day_time(client, team, invitation, smtp_server):
    app, query = invitation
    client.force_login(team.teammate)
    data = {
        "name": query.name,
        "datasource": str(query.datasource_id),
        "timeout_seconds": str(query.timeout_seconds),
        "body_type": "html",
        "test_values": json.dumps(welcome_inputs()),
        **{k: v for k, v in query.fields.items() if isinstance(v, str)},
        "inline_images": "",
        "body": "<p>Hi</p>",
        "attachments": "",
    }
    response = client.post(
        reverse("editor:query_preview", args=[app.slug, query.name]),
        data,
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200, response.text
    text = response.text
    assert WHEN in text
    listed = text[text.index("Attachments <span") :]
    assert re.search(r'<span class="badge">1</span>', listed)
    assert "invite.ics" in listed and "the calendar invite" in listed
    assert "None." not in listed
    assert smtp_server.handler.transactions == 0
