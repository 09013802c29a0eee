"""Scheduled sends: reading a query's ``send_at`` (after its bindings are evaluated)
into the moment a run is due.

Accepted: ISO 8601 with an offset or ``Z`` (``2026-12-24T09:00:00+01:00``), or a naive
``YYYY-MM-DDTHH:MM[:SS]`` (a space instead of the ``T`` too, as a person types it),
read in the server's ``TIME_ZONE`` (an app has no time zone of its own). Empty: now.
A time more than ``KILN_SEND_AT_PAST_SLACK_SECONDS`` in the past, or more than
``KILN_SEND_AT_MAX_DAYS`` ahead, is refused with an error naming ``send_at``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from queries.errors import RunRequestError

FIELD = "send_at"
#: The shapes accepted, checked before ``fromisoformat`` (which also takes week dates,
#: ordinal dates and bare dates, none of which a person means as a send time).
_SHAPE = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)
EXAMPLE = "2026-12-24T09:00 or 2026-12-24T09:00:00+01:00"


def parse_send_at(value, now: datetime | None = None) -> datetime | None:
    """The aware moment ``value`` names; None for "now" (empty, or within the slack in
    the past). ``RunRequestError`` naming ``send_at`` for anything else."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if not text:
            return None
        if not _SHAPE.fullmatch(text):
            raise RunRequestError(
                FIELD,
                f"send_at: “{text[:60]}” is not a date and time; write it as {EXAMPLE}.",
            )
        try:
            moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        except ValueError as exc:
            message = f"send_at: “{text}” is not a valid date ({exc})."
            raise RunRequestError(FIELD, message) from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return _in_range(moment, now or timezone.now())


def _in_range(moment: datetime, now: datetime) -> datetime | None:
    slack = timedelta(seconds=settings.KILN_SEND_AT_PAST_SLACK_SECONDS)
    if moment < now - slack:
        shown = timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")
        raise RunRequestError(FIELD, f"send_at: {shown} is in the past; choose a later time.")
    if moment <= now:
        return None
    days = settings.KILN_SEND_AT_MAX_DAYS
    if moment > now + timedelta(days=days):
        raise RunRequestError(
            FIELD,
            f"send_at: more than {days} days ahead; a run can be scheduled at most "
            f"{days} days ahead (KILN_SEND_AT_MAX_DAYS).",
        )
    return moment


def describe(moment: datetime) -> str:
    """A send time as the viewer and the outbox show it, in the server's time zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")
