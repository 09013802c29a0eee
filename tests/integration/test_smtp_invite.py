"""Calendar invites: what the SMTP server receives has a text/calendar; method=REQUEST
part that parses as one VEVENT with the right UTC times, the From as organizer, To and
CC as attendees and never a BCC; through the run API, the preview and every bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from icalendar import Calendar

from datasources.errors import FieldError
from datasources.plugins import get_plugin
from queries.models import ApiToken, QueryRun
from tests.support.apps import make_app, post_preview, post_run, welcome_inputs

pytestmark = pytest.mark.django_db(transaction=True)

smtp = get_plugin("smtp")


def fields(**overrides) -> dict:
    values = {
        "from": "Kiln Team <app@kiln.test>",
        "to": "Ann <ann@example.com>, bob@example.com",
        "cc": "carl@example.com",
        "bcc": "secret@example.com",
        "subject": "Planning",
        "body": "See you there.",
        "invite_start": "2027-01-15T09:00",
        "invite_timezone": "Europe/Berlin",
    }
    values.update(overrides)
    return values


def calendar_part(message):
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    return part


def event_of(message):
    cal = Calendar.from_ical(calendar_part(message).get_content())
    assert cal.name == "VCALENDAR" and str(cal["METHOD"]) == "REQUEST"
    (event,) = cal.walk("VEVENT")
    return cal, event


def attendees(event) -> dict[str, str]:
    found = event.get("ATTENDEE")
    found = found if isinstance(found, list) else [found]
    return {str(a).removeprefix("mailto:"): a.params["ROLE"] for a in found}


@pytest.fixture
def contact(team, smtp_server):
    app, query = make_app(team.workspace, smtp_server.port)
    query.fields = {
        **query.fields,
        "bcc": "archive@kiln.test",
        "invite_start": "2027-07-01T09:00",
        "invite_end": "2027-07-01T10:30",
        "invite_timezone": "Europe/Berlin",
        "invite_location": "Room << form1.data.name >>",
    }
    query.save()
    return app, query


def test_an_invite_through_the_run_api_parses_with_its_utc_times(
    client, team, contact, smtp_server
):
    app, _ = contact
    token = ApiToken.issue(team.teammate, "tests")[1]
    response = post_run(client, app, welcome_inputs(cc_input={"value": "dana@example.com"}), token)
    assert response.status_code == 202, response.json()
    (received,) = smtp_server.received
    message = received.message
    part = calendar_part(message)
    assert part.get_param("method") == "REQUEST"
    assert part.get_content_charset() == "utf-8"
    # Shown as an invitation: an alternative of the body, beside text and HTML.
    (alternative,) = [p for p in message.walk() if p.get_content_type() == "multipart/alternative"]
    assert [p.get_content_type() for p in alternative.iter_parts()] == [
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    cal, event = event_of(message)
    assert str(cal["VERSION"]) == "2.0" and "Kiln" in str(cal["PRODID"])
    # 09:00 in Berlin in summer (CEST, +02:00) is 07:00 UTC.
    assert event["DTSTART"].dt == datetime(2027, 7, 1, 7, 0, tzinfo=UTC)
    assert event["DTEND"].dt == datetime(2027, 7, 1, 8, 30, tzinfo=UTC)
    assert "DTSTART:20270701T070000Z" in part.get_content()
    assert str(event["UID"]) == message["Message-ID"].strip("<>")
    assert (int(event["SEQUENCE"]), str(event["STATUS"])) == (0, "CONFIRMED")
    assert str(event["SUMMARY"]) == "Welcome, Ann!"  # the subject
    assert str(event["LOCATION"]) == "Room Ann"
    assert str(event["ORGANIZER"]) == "mailto:app@kiln.test"
    assert attendees(event) == {
        "ann@example.com": "REQ-PARTICIPANT",
        "dana@example.com": "OPT-PARTICIPANT",
    }
    assert "archive@kiln.test" not in received.data.decode("utf-8", "replace")
    assert "archive@kiln.test" in received.rcpt_tos  # still a BCC recipient
    (ics,) = [a for a in message.iter_attachments() if a.get_filename() == "invite.ics"]
    assert Calendar.from_ical(ics.get_content())["METHOD"] == "REQUEST"
    run = QueryRun.objects.get(pk=response.json()["id"])
    assert run.status == "sent"


def test_a_winter_time_and_every_attendee_role(smtp_server):
    smtp.execute(smtp_server.settings(), "send_email", fields())
    _, event = event_of(smtp_server.received[0].message)
    # 09:00 in Berlin in January (CET, +01:00) is 08:00 UTC; the end defaults to an hour on.
    assert event["DTSTART"].dt == datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
    assert event["DTEND"].dt == datetime(2027, 1, 15, 9, 0, tzinfo=UTC)
    assert attendees(event) == {
        "ann@example.com": "REQ-PARTICIPANT",
        "bob@example.com": "REQ-PARTICIPANT",
        "carl@example.com": "OPT-PARTICIPANT",
    }
    ann = next(a for a in event["ATTENDEE"] if "ann@" in str(a))
    assert (ann.params["CN"], ann.params["RSVP"], ann.params["PARTSTAT"]) == (
        "Ann",
        "TRUE",
        "NEEDS-ACTION",
    )
    assert event["ORGANIZER"].params["CN"] == "Kiln Team"


@pytest.mark.parametrize(
    ("start", "end", "zone", "utc_start"),
    [
        ("2027-01-15T09:00:00+05:30", "", "America/New_York", datetime(2027, 1, 15, 3, 30)),
        ("2027-01-15T09:00Z", "2027-01-15T09:30Z", "", datetime(2027, 1, 15, 9, 0)),
        ("2027-01-15 09:00", "", "America/New_York", datetime(2027, 1, 15, 14, 0)),
    ],
)
def test_offsets_win_over_the_time_zone(smtp_server, start, end, zone, utc_start):
    smtp.execute(
        smtp_server.settings(),
        "send_email",
        fields(invite_start=start, invite_end=end, invite_timezone=zone),
    )
    _, event = event_of(smtp_server.received[0].message)
    assert event["DTSTART"].dt == utc_start.replace(tzinfo=UTC)


def test_naive_times_default_to_the_deployments_time_zone(smtp_server, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    smtp.execute(smtp_server.settings(), "send_email", fields(invite_timezone=""))
    _, event = event_of(smtp_server.received[0].message)
    assert event["DTSTART"].dt == datetime(2027, 1, 15, 0, 0, tzinfo=UTC)


def test_text_is_escaped_and_unicode_kept(smtp_server):
    smtp.execute(
        smtp_server.settings(),
        "send_email",
        fields(
            invite_summary="Réunion; budget, Q1 ✓",
            invite_location="Salle 2, Genève",
            invite_description="Agenda:\n1. Budget\r\n2. Plans",
        ),
    )
    _, event = event_of(smtp_server.received[0].message)
    assert str(event["SUMMARY"]) == "Réunion; budget, Q1 ✓"
    assert str(event["LOCATION"]) == "Salle 2, Genève"
    assert str(event["DESCRIPTION"]) == "Agenda:\n1. Budget\n2. Plans"


def test_no_invite_without_a_start(smtp_server):
    smtp.execute(
        smtp_server.settings(),
        "send_email",
        fields(invite_start="", invite_location="Room 1"),
    )
    message = smtp_server.received[0].message
    assert not [p for p in message.walk() if "calendar" in p.get_content_type()]
    assert message.get_content_type() == "text/plain"


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"invite_start": "next tuesday"}, "invite_start", "not a date and time"),
        ({"invite_start": "2027-01-15"}, "invite_start", "not a date and time"),
        ({"invite_start": "2027-02-30T09:00"}, "invite_start", "not a date and time"),
        ({"invite_start": ["2027-01-15T09:00"]}, "invite_start", "must be text"),
        ({"invite_timezone": "Mars/Olympus"}, "invite_timezone", "not a time zone"),
        ({"invite_timezone": "../../etc/passwd"}, "invite_timezone", "not a time zone"),
        # Names ZoneInfo would read as a path: a directory, a name too long for a file.
        ({"invite_timezone": "Europe"}, "invite_timezone", "not a time zone"),
        ({"invite_timezone": "Europe/" + "x" * 300}, "invite_timezone", "not a time zone"),
        ({"invite_timezone": "europe/berlin"}, "invite_timezone", "not a time zone"),
        # Years where the default length or the conversion to UTC would overflow.
        ({"invite_start": "9999-12-31T23:30"}, "invite_start", "between 1900 and 2200"),
        ({"invite_start": "0001-01-01T00:30"}, "invite_start", "between 1900 and 2200"),
        ({"invite_start": "9999-12-31T23:30+00:00"}, "invite_start", "between 1900 and 2200"),
        ({"invite_end": "9999-12-31T23:59"}, "invite_end", "between 1900 and 2200"),
        (
            {"invite_start": "0001-01-01T00:30", "invite_timezone": "Asia/Tokyo"},
            "invite_start",
            "between 1900 and 2200",
        ),
        ({"invite_end": "2027-01-15T08:59"}, "invite_end", "must be after its start"),
        ({"invite_end": "2027-01-15T09:00"}, "invite_end", "must be after its start"),
        ({"invite_summary": "Hi\r\nMETHOD:CANCEL"}, "invite_summary", "one line"),
        ({"invite_location": "Room\u20281"}, "invite_location", "one line"),
        ({"invite_description": "a\x00b"}, "invite_description", "control characters"),
    ],
)
def test_bad_invites_name_the_field_and_send_nothing(smtp_server, overrides, field, words):
    with pytest.raises(FieldError) as caught:
        smtp.execute(smtp_server.settings(), "send_email", fields(**overrides))
    assert caught.value.field == field
    assert words in caught.value.message
    assert smtp_server.handler.transactions == 0


def test_the_run_api_answers_400_naming_the_time_zone(client, team, contact, smtp_server):
    app, query = contact
    query.fields = {**query.fields, "invite_timezone": "Europe/Atlantis"}
    query.save()
    token = ApiToken.issue(team.teammate, "tests")[1]
    response = post_run(client, app, welcome_inputs(), token)
    assert response.status_code == 400
    assert response.json()["field"] == "invite_timezone"
    assert not QueryRun.objects.exists()


def test_the_preview_shows_when_where_and_who(client, team, contact, smtp_server):
    app, query = contact
    client.force_login(team.teammate)
    test_values = welcome_inputs(cc_input={"value": "dana@example.com"})
    response = post_preview(client, app, query, test_values)
    assert response.status_code == 200, response.text
    text = response.text
    assert "Calendar invite" in text
    assert "Thu 1 Jul 2027, 09:00–10:30 (Europe/Berlin); 07:00–08:30 UTC" in text
    assert "<dt>Where</dt><dd>Room Ann</dd>" in text
    assert "ann@example.com (required), dana@example.com (optional)" in text
    assert "archive@kiln.test (" not in text
    assert smtp_server.handler.transactions == 0


def test_a_text_body_with_attachments_gains_an_alternative_for_the_invite(smtp_server):
    smtp.execute(
        smtp_server.settings(),
        "send_email",
        fields(attachments=[{"name": "agenda.txt", "data": "data:,1. Budget"}]),
    )
    message = smtp_server.received[0].message
    assert [(p.get_content_type(), p.get_filename()) for p in message.walk()] == [
        ("multipart/mixed", None),
        ("multipart/alternative", None),
        ("text/plain", None),
        ("text/calendar", None),
        ("text/plain", "agenda.txt"),
        ("application/ics", "invite.ics"),
    ]
    assert message.get_body(("plain",)).get_content().strip() == "See you there."
