"""The system check that the Celery and outbox times nest (queries/checks.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from queries.checks import Times, check_delivery_times, problems

ROOT = Path(__file__).resolve().parents[2]
GOOD = Times(visibility=3600, hard=660, soft=630, longest_run=600, stuck=900)


def ids(times: Times) -> list[str]:
    return [error.id for error in problems(times)]


def test_the_defaults_nest():
    assert check_delivery_times(None) == []


def test_nested_times_pass():
    assert ids(GOOD) == []
    # The soft limit may equal the longest run timeout.
    assert ids(Times(visibility=30, hard=12, soft=10, longest_run=10, stuck=15)) == []


def test_a_visibility_timeout_shorter_than_the_time_limit_is_refused():
    (error,) = problems(Times(**{**GOOD.__dict__, "visibility": 600}))
    assert error.id == "queries.E002"
    assert "KILN_BROKER_VISIBILITY_TIMEOUT" in error.msg
    assert "KILN_TASK_TIME_LIMIT" in error.msg
    assert "600 s" in error.msg and "660 s" in error.msg


def test_equal_visibility_and_time_limit_is_refused():
    assert ids(Times(**{**GOOD.__dict__, "visibility": 660})) == ["queries.E002"]


def test_a_soft_limit_not_below_the_hard_limit_is_refused():
    (error,) = problems(Times(**{**GOOD.__dict__, "soft": 660}))
    assert error.id == "queries.E003"
    assert "KILN_TASK_SOFT_TIME_LIMIT" in error.msg and "KILN_TASK_TIME_LIMIT" in error.msg


def test_a_soft_limit_below_the_longest_run_timeout_is_refused():
    (error,) = problems(Times(**{**GOOD.__dict__, "soft": 300}))
    assert error.id == "queries.E004"
    assert "KILN_RUN_TIMEOUT_MAX_SECONDS" in error.msg


def test_a_stuck_time_not_above_the_time_limit_is_refused():
    (error,) = problems(Times(**{**GOOD.__dict__, "stuck": 660}))
    assert error.id == "queries.E005"
    assert "KILN_RUN_STUCK_SECONDS" in error.msg and "still be sending" in error.msg


def test_every_broken_rule_is_reported():
    bad = Times(visibility=100, hard=200, soft=300, longest_run=600, stuck=60)
    assert ids(bad) == ["queries.E002", "queries.E003", "queries.E004", "queries.E005"]


@pytest.mark.parametrize("missing", ["visibility", "hard", "soft", "longest_run", "stuck"])
def test_a_missing_or_zero_time_is_refused_by_name(missing):
    for value in (None, 0):
        errors = problems(Times(**{**GOOD.__dict__, missing: value}))
        assert [e.id for e in errors] == ["queries.E001"]
        assert "must be set to a number of seconds" in errors[0].msg


def test_manage_py_check_refuses_inconsistent_settings(settings):
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 60}
    settings.CELERY_TASK_TIME_LIMIT = 120
    with pytest.raises(SystemCheckError, match="KILN_BROKER_VISIBILITY_TIMEOUT"):
        call_command("check")


def test_the_environment_names_reach_the_check():
    """The names a deployment (or the chaos test) sets: short values that nest pass,
    a time limit above the visibility timeout is refused."""
    short = {
        "KILN_RUN_TIMEOUT_MAX_SECONDS": "10",
        "KILN_TASK_SOFT_TIME_LIMIT": "12",
        "KILN_TASK_TIME_LIMIT": "15",
        "KILN_BROKER_VISIBILITY_TIMEOUT": "30",
        "KILN_RUN_STUCK_SECONDS": "20",
        "KILN_SWEEP_GRACE_SECONDS": "2",
        "KILN_SWEEP_EVERY_SECONDS": "1",
        # A retry's countdown stays within the visibility timeout too (queries.E008).
        "KILN_RUN_RETRY_BASE_SECONDS": "1",
        "KILN_RUN_RETRY_MAX_SECONDS": "20",
    }
    ok = manage_check(short)
    assert ok.returncode == 0, ok.stderr
    bad = manage_check({**short, "KILN_BROKER_VISIBILITY_TIMEOUT": "15"})
    assert bad.returncode != 0
    assert "queries.E002" in bad.stderr and "KILN_BROKER_VISIBILITY_TIMEOUT" in bad.stderr


def manage_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
