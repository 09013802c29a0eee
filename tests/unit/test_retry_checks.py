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
