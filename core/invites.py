"""A calendar invite as a person reads it: when, where, who. One home for it: the query
editor's preview describes the invite it builds with it, the outbox and the dev mailbox
the text/calendar part of a message. Free of Django.

Mail read here was written by someone else, so a calendar that does not parse is no
invite (the page shows the rest of the message), never an error page."""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from email.headerregistry import Address
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar

#: How much of a received calendar is read: an invite is a few kilobytes.
MAX_CALENDAR_BYTES = 256 * 1024


def when(start: datetime, end: datetime, zone: str) -> str:
    """The invite's time as one line: the day once when it starts and ends on the same
    day ("Fri 15 Jan 2027, 09:00–10:00"), both days otherwise; in ``zone`` and, unless
    that is UTC, in UTC too."""
    local = _zone(zone)
    first, last = start.astimezone(local), end.astimezone(local)
    if first.date() == last.date():
        text = f"{_day(first)}, {first:%H:%M}–{last:%H:%M}"
    else:
        text = f"{_day(first)}, {first:%H:%M} – {_day(last)}, {last:%H:%M}"
    if zone == "UTC":
        return f"{text} (UTC)"
    return f"{text} ({zone}); {start.astimezone(UTC):%H:%M}–{end.astimezone(UTC):%H:%M} UTC"


def _day(moment: datetime) -> str:
    return f"{moment:%a} {moment.day} {moment:%b %Y}"


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def read_calendar(ics: bytes, zone: str = "") -> dict[str, Any] | None:
    """What a page shows of the first event of ``ics`` (an iCalendar text): the keys of
    ``datasources.plugins.smtp.invite.describe``, times shown in ``zone`` (else the
    event's own zone, else UTC). None when it holds no event with a start, or does not
    parse."""
    if len(ics) > MAX_CALENDAR_BYTES:
        return None
    try:
        calendar = Calendar.from_ical(ics)
        events = calendar.walk("VEVENT")
        if not events:
            return None
        return _event(events[0], calendar.get("method"), zone)
    except Exception:
        # icalendar raises many kinds on malformed input; a bad invite is no invite.
        return None


def _event(event, method, zone: str) -> dict[str, Any] | None:
    start = _moment(event.decoded("dtstart", None))
    if start is None:
        return None
    end = _moment(event.decoded("dtend", None)) or start
    zone = zone if zone and _zone(zone) is not UTC else _zone_name(start)
    attendees = event.get("attendee") or []
    if not isinstance(attendees, list):
        attendees = [attendees]
    return {
        "summary": str(event.get("summary") or ""),
        "start": start,
        "end": end,
        "zone": zone,
        "when": when(start, end, zone),
        "location": str(event.get("location") or ""),
        "description": str(event.get("description") or ""),
        "organizer": _person(event.get("organizer")),
        "attendees": [
            {"address": _person(a), "required": a.params.get("ROLE") != "OPT-PARTICIPANT"}
            for a in attendees
        ],
        "method": str(method or ""),
    }


def _moment(value) -> datetime | None:
    """A start or end as an aware datetime: a floating time is read as UTC, an all-day
    date as its midnight in UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def _zone_name(moment: datetime) -> str:
    key = getattr(moment.tzinfo, "key", "")
    return key if key and _zone(key) is not UTC else "UTC"


def _person(value) -> str:
    """An ORGANIZER or ATTENDEE as an address line: "Ann <ann@example.com>"."""
    if value is None:
        return ""
    address = str(value)
    if address.lower().startswith("mailto:"):
        address = address[7:]
    name = str(value.params.get("CN", "")) if hasattr(value, "params") else ""
    if not name:
        return address
    try:
        return str(Address(display_name=name, addr_spec=address))
    except (ValueError, IndexError):
        return f"{name} <{address}>"
