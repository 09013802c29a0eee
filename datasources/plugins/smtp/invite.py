"""Calendar invites: an event sent with the email as an iCalendar REQUEST, which Gmail,
Outlook and Apple Mail show as an invitation to accept or decline.

The invite is on when Invite start is set. The organizer is the From address, the
attendees the To (required) and CC (optional) addresses; BCC recipients are never named
in it, as they are in no header. The event's UID is the message's Message-ID, so a
retry or a resend of a run is the same invitation, not a second one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from icalendar import Calendar, Event, vCalAddress

from core import invites
from datasources.errors import FieldError, quoted
from datasources.plugins.smtp.message import field_text

LABELS = {
    "invite_start": "Invite start",
    "invite_end": "Invite end",
    "invite_timezone": "Invite time zone",
    "invite_summary": "Invite title",
    "invite_location": "Invite location",
    "invite_description": "Invite description",
}
PRODID = "-//Kiln//Send email//EN"
#: The attached copy's name: clients that ignore the text/calendar alternative offer it.
FILENAME = "invite.ics"
#: How long an invite lasts when Invite end is empty.
DEFAULT_LENGTH = timedelta(hours=1)
MAX_LINE_TEXT = 998
#: The longest IANA name is about 30 characters; anything much longer is not one.
MAX_ZONE_NAME = 64
#: The years an invite may fall in: beyond them a time is a typo, and near year 9999
#: adding the default length or converting to UTC overflows.
YEARS = range(1900, 2201)
MAX_DESCRIPTION = 20_000
#: Control characters have no place in iCalendar text (RFC 5545, 3.3.11); a title or a
#: location is one line.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")
_LINE_BREAK = re.compile("[\r\n]")
#: A date and a time: a date alone would be an all-day event, which is not offered.
_HAS_TIME = re.compile(r"\d[Tt ]\d")


@dataclass(frozen=True)
class Invite:
    """A checked invite: its times in UTC, and the zone naive times were read in."""

    start: datetime
    end: datetime
    zone: str
    summary: str
    location: str
    description: str


def _text(fields: dict, name: str) -> str:
    return field_text(name, fields.get(name), LABELS[name]).strip()


@cache
def _zone_names() -> frozenset[str]:
    """The IANA names this system knows: a name is looked up here, never used as a
    path (ZoneInfo reads a file named after it; "Europe" is a directory, 300 characters
    too long a name)."""
    return frozenset(available_timezones()) | {"UTC"}


def _zone(fields: dict) -> tuple[str, ZoneInfo]:
    name = _text(fields, "invite_timezone") or settings.TIME_ZONE
    if len(name) > MAX_ZONE_NAME or name not in _zone_names():
        raise FieldError(
            "invite_timezone",
            f"Invite time zone {quoted(name)} is not a time zone name; use an IANA name such "
            "as Europe/Berlin, America/New_York or UTC.",
        )
    return name, ZoneInfo(name)


def _moment(fields: dict, name: str, zone: ZoneInfo) -> datetime | None:
    """The field's time in UTC: ISO 8601 with an offset (or Z), or without one in
    ``zone``; None when empty."""
    text = _text(fields, name)
    if not text:
        return None
    try:
        if not _HAS_TIME.search(text):
            raise ValueError
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
    except ValueError:
        raise FieldError(
            name,
            f"{LABELS[name]} {quoted(text)} is not a date and time: use ISO 8601, e.g. "
            "2027-01-15T09:00 (in the invite's time zone) or 2027-01-15T09:00+01:00.",
        ) from None
    if moment.year not in YEARS:
        raise FieldError(
            name,
            f"{LABELS[name]} {text[:80]!r} is in the year {moment.year}; an invite's times "
            f"must be between {YEARS[0]} and {YEARS[-1]}.",
        )
    return moment.astimezone(UTC)


def _one_line(fields: dict, name: str, default: str = "") -> str:
    text = _text(fields, name) or default
    if len(text) > MAX_LINE_TEXT:
        raise FieldError(name, f"{LABELS[name]} is {len(text):,} characters, over {MAX_LINE_TEXT}.")
    if _LINE_BREAK.search(text) or _CONTROL.search(text):
        raise FieldError(name, f"{LABELS[name]} must be one line, without control characters.")
    return text


def _description(fields: dict) -> str:
    text = _text(fields, "invite_description").replace("\r\n", "\n").replace("\r", "\n")
    if _CONTROL.search(text):
        raise FieldError(
            "invite_description", "Invite description must not contain control characters."
        )
    if len(text) > MAX_DESCRIPTION:
        raise FieldError(
            "invite_description",
            f"Invite description is {len(text):,} characters, over {MAX_DESCRIPTION:,}.",
        )
    return text


def read_invite(fields: dict, subject: str) -> Invite | None:
    """The invite ``fields`` ask for, checked; None when Invite start is empty. Raises
    ``FieldError`` naming the field. The title defaults to ``subject``."""
    if not _text(fields, "invite_start"):
        return None
    zone_name, zone = _zone(fields)
    start = _moment(fields, "invite_start", zone)
    assert start is not None
    end = _moment(fields, "invite_end", zone) or start + DEFAULT_LENGTH
    if end <= start:
        raise FieldError(
            "invite_end",
            f"Invite end ({end:%Y-%m-%d %H:%M} UTC) must be after its start "
            f"({start:%Y-%m-%d %H:%M} UTC).",
        )
    return Invite(
        start=start,
        end=end,
        zone=zone_name,
        summary=_one_line(fields, "invite_summary", subject) or "Invitation",
        location=_one_line(fields, "invite_location"),
        description=_description(fields),
    )


def _addresses(message: EmailMessage, header: str) -> tuple[Address, ...]:
    value = message[header]
    return tuple(value.addresses) if value is not None else ()


def _person(address: Address, **params: str) -> vCalAddress:
    person = vCalAddress(f"mailto:{address.addr_spec}")
    if address.display_name:
        person.params["CN"] = address.display_name
    person.params.update(params)
    return person


def calendar(message: EmailMessage, invite: Invite) -> bytes:
    """The VCALENDAR of ``invite`` for ``message``: organizer From, attendees To and CC."""
    event = Event()
    event.add("uid", str(message["Message-ID"]).strip().strip("<>"))
    event.add("dtstamp", message["Date"].datetime.astimezone(UTC))
    event.add("dtstart", invite.start)
    event.add("dtend", invite.end)
    event.add("sequence", 0)
    event.add("status", "CONFIRMED")
    event.add("summary", invite.summary)
    if invite.location:
        event.add("location", invite.location)
    if invite.description:
        event.add("description", invite.description)
    event.add("organizer", _person(_addresses(message, "From")[0]))
    for address, role in attendees(message):
        event.add(
            "attendee",
            _person(address, CUTYPE="INDIVIDUAL", ROLE=role, PARTSTAT="NEEDS-ACTION", RSVP="TRUE"),
        )
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "REQUEST")
    cal.add_component(event)
    return cal.to_ical()


def attendees(message: EmailMessage) -> list[tuple[Address, str]]:
    """To as required and CC as optional participants, each address once."""
    seen: set[str] = set()
    people = []
    for header, role in (("To", "REQ-PARTICIPANT"), ("Cc", "OPT-PARTICIPANT")):
        for address in _addresses(message, header):
            if address.addr_spec.lower() not in seen:
                seen.add(address.addr_spec.lower())
                people.append((address, role))
    return people


def attach(message: EmailMessage, invite: Invite) -> None:
    """Add the invite to ``message``: a text/calendar; method=REQUEST alternative of the
    body (what mail clients show as an invitation) and the same calendar attached as
    invite.ics (for those that only offer files), as calendar services send them."""
    ics = calendar(message, invite)
    text = ics.decode("utf-8")
    alternative: MIMEPart = message
    if message.get_content_type() == "multipart/mixed":
        alternative = next(message.iter_parts())
    alternative.add_alternative(
        text,
        subtype="calendar",
        params={"method": "REQUEST"},
        cte="7bit" if text.isascii() else "base64",
    )
    message.add_attachment(ics, maintype="application", subtype="ics", filename=FILENAME)


def attached_file(message: EmailMessage) -> dict[str, Any] | None:
    """The invite.ics that ``attach`` added, as the preview lists an attachment."""
    for part in message.iter_attachments():
        if part.get_filename() == FILENAME:
            size = len(part.get_payload(decode=True) or b"")
            return {"name": FILENAME, "type": part.get_content_type(), "size": size}
    return None


def describe(message: EmailMessage, invite: Invite) -> dict[str, Any]:
    """What the preview shows of an invite: when (UTC times, shown in ``zone`` and in
    UTC), where, who."""
    organizer = _addresses(message, "From")[0]
    return {
        "summary": invite.summary,
        "start": invite.start,
        "end": invite.end,
        "zone": invite.zone,
        "when": invites.when(invite.start, invite.end, invite.zone),
        "location": invite.location,
        "description": invite.description,
        "organizer": str(organizer),
        "attendees": [
            {"address": str(a), "required": role == "REQ-PARTICIPANT"}
            for a, role in attendees(message)
        ],
    }
