"""Reading a send_at (queries/schedule.py): the shapes accepted, the server's time zone
for a naive time, and an error naming send_at for the past, too far ahead and garbage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queries.checks import send_at_problems
from queries.errors import RunRequestError
from queries.schedule import parse_send_at

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_empty_means_now(value):
    assert parse_send_at(value, NOW) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-07T13:00:00Z", datetime(2026, 12, 7, 13, 0, tzinfo=UTC)),
        ("2026-12-07T13:00:00z", datetime(2026, 12, 7, 13, 0, tzinfo=UTC)),
        ("2026-12-07T14:30:00+01:00", datetime(2026, 12, 7, 13, 30, tzinfo=UTC)),
        ("2026-12-07T14:30+0100", datetime(2026, 12, 7, 13, 30, tzinfo=UTC)),
        ("2026-12-07T12:00:05.250Z", datetime(2026, 12, 7, 12, 0, 5, 250000, tzinfo=UTC)),
    ],
)
def test_iso_8601_with_an_offset(text, expected):
    assert parse_send_at(text, NOW) == expected


def test_a_naive_time_is_read_in_the_servers_time_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"  # UTC+1 in December
    assert parse_send_at("2026-12-07T14:00", NOW) == datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
    assert parse_send_at("2026-12-07 14:00:30", NOW) == datetime(2026, 12, 7, 13, 0, 30, tzinfo=UTC)


def test_a_moment_within_the_slack_in_the_past_means_now(settings):
    settings.KILN_SEND_AT_PAST_SLACK_SECONDS = 60
    assert parse_send_at("2026-12-07T11:59:30Z", NOW) is None
    assert parse_send_at("2026-12-07T12:00:00Z", NOW) is None


def test_the_past_is_refused_naming_send_at(settings):
    settings.KILN_SEND_AT_PAST_SLACK_SECONDS = 60
    with pytest.raises(RunRequestError) as caught:
        parse_send_at("2026-12-07T11:58:00Z", NOW)
    assert caught.value.field == "send_at"
    assert "is in the past" in caught.value.message
    assert caught.value.message.startswith("send_at: 2026-12-07 11:58:00")


def test_too_far_ahead_is_refused(settings):
    settings.KILN_SEND_AT_MAX_DAYS = 366
    assert parse_send_at(NOW + timedelta(days=365), NOW) == NOW + timedelta(days=365)
    with pytest.raises(RunRequestError) as caught:
        parse_send_at((NOW + timedelta(days=367)).isoformat(), NOW)
    assert caught.value.field == "send_at"
    assert "366 days" in caught.value.message


@pytest.mark.parametrize(
    "text",
    [
        "tomorrow",
        "2026-12-07",  # a date alone: which time?
        "2026-W50-1T10:00",  # a week date: valid ISO 8601, never meant here
        "12/24/2026 09:00",
        "2026-12-07T12:00:00+01:00<script>",
        "2026-12-07\nT12:00",
        "1" * 500,
    ],
)
def test_garbage_is_an_error_naming_send_at(text):
    with pytest.raises(RunRequestError) as caught:
        parse_send_at(text, NOW)
    assert caught.value.field == "send_at"
    assert caught.value.message.startswith("send_at: ")
    assert "2026-12-24T09:00" in caught.value.message  # says how to write it


def test_an_impossible_date_is_an_error_naming_send_at():
    with pytest.raises(RunRequestError) as caught:
        parse_send_at("2026-02-30T10:00", NOW)
    assert caught.value.field == "send_at"
    assert "not a valid date" in caught.value.message


@pytest.mark.parametrize(
    ("max_days", "slack", "codes"),
    [
        (366, 60, []),
        (1, 0, []),
        (0, 60, ["queries.E006"]),
        ("366", 60, ["queries.E006"]),
        (366, -1, ["queries.E007"]),
        (None, None, ["queries.E006", "queries.E007"]),
    ],
)
def test_the_limits_are_checked_at_start(max_days, slack, codes):
    assert [e.id for e in send_at_problems(max_days, slack)] == codes
