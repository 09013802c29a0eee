"""The retry schedule's settings that make no sense are refused by ``manage.py check``,
each naming the setting."""

from __future__ import annotations

import pytest

from queries.checks import retry_problems


def test_the_default_schedule_and_a_fast_one_pass():
    assert retry_problems(60.0, 900.0, 3600, 10) == []
    assert retry_problems(0.2, 0.4, 0, 1) == []


@pytest.mark.parametrize(
    ("base", "cap", "window", "attempts", "named"),
    [
        (0, 900.0, 3600, 10, "KILN_RUN_RETRY_BASE_SECONDS must be above 0"),
        (60.0, 30.0, 3600, 10, "KILN_RUN_RETRY_MAX_SECONDS (30.0) must be at least"),
        (60.0, 900.0, -1, 10, "KILN_RUN_RETRY_WINDOW_SECONDS must be"),
        (60.0, 900.0, 3600, 0, "KILN_RUN_MAX_ATTEMPTS must be"),
        (None, 900.0, 3600, 10, "KILN_RUN_RETRY_BASE_SECONDS must be above 0 (it is None)"),
    ],
)
def test_a_schedule_that_makes_no_sense_is_an_error_naming_the_setting(
    base, cap, window, attempts, named
):
    errors = retry_problems(base, cap, window, attempts)
    assert errors and all(e.id == "queries.E008" for e in errors)
    assert any(named in e.msg for e in errors)


def test_the_longest_retry_delay_stays_within_the_brokers_visibility_timeout():
    """A retry is a task with a countdown: delayed past the visibility timeout, Redis
    would hand it to a second worker. The margin is the scheduled sends' (90%)."""
    assert retry_problems(60.0, 900.0, 3600, 10, visibility=3600) == []
    errors = retry_problems(60.0, 3300.0, 3600, 10, visibility=3600)
    assert [e.id for e in errors] == ["queries.E008"]
    assert "KILN_RUN_RETRY_MAX_SECONDS (3300.0) must be below 90%" in errors[0].msg
    assert "visibility_timeout" in errors[0].msg
