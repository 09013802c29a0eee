"""The outbox's filters, read from the query string: status, query, app, date from/to,
recipient and a free-text search. One home for them: the list and its CSV export show
exactly the same runs.

A value that cannot be read is reported with the field it came from and the page is
answered with HTTP 400; it never becomes an error page, and it never silently widens
what an export holds."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from queries.models import QueryRun, RunStatus

#: The status filter's choices: the run statuses, with a scheduled run that already
#: failed once told apart as "Retrying" (as the list shows it); "scheduled" then means
#: never tried yet.
RETRYING = "retrying"


def _status_choices() -> list[tuple[str, str]]:
    choices: list[tuple[str, str]] = []
    for value, label in RunStatus.choices:
        choices.append((value, label))
        if value == RunStatus.SCHEDULED:
            choices.append((RETRYING, "Retrying"))
    return choices


STATUSES = _status_choices()
_BY_STATUS = {
    RunStatus.SCHEDULED.value: Q(status=RunStatus.SCHEDULED, attempts=0),
    RETRYING: Q(status=RunStatus.SCHEDULED, attempts__gt=0),
}

#: Longest text filter read; longer text is refused, not cut (a cut search finds more).
MAX_TEXT = 200


@dataclass
class OutboxFilters:
    """The filters as chosen (``chosen``: what the form shows again) and what could not
    be read (``problems``: one sentence each, naming the field)."""

    chosen: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    _where: list[Q] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.chosen)

    def apply(self, runs: QuerySet[QueryRun]) -> QuerySet[QueryRun]:
        for condition in self._where:
            runs = runs.filter(condition)
        return runs


def read_filters(params: QueryDict, *, with_app: bool) -> OutboxFilters:
    """The filters of ``params``; ``with_app``: the workspace's outbox, where runs may
    also be narrowed to one app (by its slug)."""
    filters = OutboxFilters()
    _status(filters, params.get("status", "").strip())
    names = (("query", "query_name"),) + ((("app", "app__slug"),) if with_app else ())
    for key, column in names:
        if text := _text(filters, params, key):
            filters._where.append(Q(**{column: text}))
    if text := _text(filters, params, "recipient"):
        filters._where.append(
            Q(mail_to__icontains=text) | Q(mail_cc__icontains=text) | Q(mail_bcc__icontains=text)
        )
    if text := _text(filters, params, "q"):
        filters._where.append(
            Q(subject__icontains=text)
            | Q(mail_to__icontains=text)
            | Q(mail_cc__icontains=text)
            | Q(mail_bcc__icontains=text)
            | Q(error__icontains=text)
        )
    _dates(filters, params)
    return filters


def _text(filters: OutboxFilters, params: QueryDict, key: str) -> str:
    text = params.get(key, "").strip()
    if len(text) > MAX_TEXT:
        filters.problems.append(f"{key}: at most {MAX_TEXT} characters; this filter is ignored.")
        return ""
    if text:
        filters.chosen[key] = text
    return text


def _status(filters: OutboxFilters, text: str) -> None:
    if not text:
        return
    known_values = [value for value, _ in STATUSES]
    if text not in known_values:
        known = ", ".join(known_values)
        filters.problems.append(
            f"status: “{text[:MAX_TEXT]}” is not a run status (one of {known}); "
            "this filter is ignored."
        )
        return
    filters.chosen["status"] = text
    filters._where.append(_BY_STATUS.get(text, Q(status=text)))


def _dates(filters: OutboxFilters, params: QueryDict) -> None:
    """From and to, whole days in the site's time zone, as a range of ``created_at`` (a
    range the index on it can serve, where ``__date`` could not)."""
    days: dict[str, datetime.date] = {}
    for key in ("from", "to"):
        text = params.get(key, "").strip()
        if not text:
            continue
        try:
            days[key] = datetime.date.fromisoformat(text)
        except ValueError:
            filters.problems.append(
                f"{key}: “{text[:MAX_TEXT]}” is not a date (YYYY-MM-DD); this filter is ignored."
            )
            continue
        filters.chosen[key] = days[key].isoformat()
    if "from" in days and "to" in days and days["from"] > days["to"]:
        filters.problems.append("to: the last day is before the first (from); no dates used.")
        for key in ("from", "to"):
            filters.chosen.pop(key)
        return
    if "from" in days:
        filters._where.append(Q(created_at__gte=_midnight(days["from"])))
    if "to" in days:
        filters._where.append(Q(created_at__lt=_midnight(days["to"] + datetime.timedelta(days=1))))


def _midnight(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
