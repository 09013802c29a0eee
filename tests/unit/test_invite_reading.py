"""Reading a received calendar for the outbox and the dev mailbox: its own time zone,
an all-day date, and calendars that are no invite (too large, no event, no start)."""

from __future__ import annotations

from core.invites import MAX_CALENDAR_BYTES, read_calendar

EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n{lines}"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def calendar(*lines: str) -> bytes:
    return EVENT.format(lines="".join(f"{line}\r\n" for line in lines)).encode()


def test_an_event_in_its_own_zone_is_shown_in_it_and_in_utc():
    ics = calendar(
        "DTSTART;TZID=America/New_York:20270115T090000",
        "DTEND;TZID=America/New_York:20270115T100000",
        "SUMMARY:Standup",
        "ORGANIZER;CN=Ann Lee:mailto:ann@example.com",
        "ATTENDEE;ROLE=OPT-PARTICIPANT:mailto:bob@example.com",
    )
    invite = read_calendar(ics)
    assert invite["when"] == "Fri 15 Jan 2027, 09:00–10:00 (America/New_York); 14:00–15:00 UTC"
    assert invite["organizer"] == "Ann Lee <ann@example.com>"
    assert invite["attendees"] == [{"address": "bob@example.com", "required": False}]
    assert invite["method"] == "REQUEST"


def test_an_all_day_event_and_a_missing_end_still_read():
    invite = read_calendar(calendar("DTSTART;VALUE=DATE:20270115"))
    assert invite["when"].startswith("Fri 15 Jan 2027, 00:00")


def test_calendars_that_are_no_invite():
    assert read_calendar(calendar("SUMMARY:No start")) is None
    assert read_calendar(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n") is None
    assert read_calendar(b"\xff\xfe not a calendar") is None
    padded = calendar("DTSTART:20270115T090000Z", "DESCRIPTION:" + "x" * MAX_CALENDAR_BYTES)
    assert read_calendar(padded) is None
