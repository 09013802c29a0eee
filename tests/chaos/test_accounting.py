"""The chaos test's accounting puts each run in the row its status and the server's
record call for."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.chaos.accounting import (
    DOUBLED,
    FAILED,
    LOST,
    MISREPORTED,
    SENT_ONCE,
    UNKNOWN_SEEN,
    UNKNOWN_UNSEEN,
    Accounting,
    RunState,
    classify,
)


def run(status: str, error: str = "", **seen: int) -> RunState:
    return RunState(1, status, error, Counter(seen))


@pytest.mark.parametrize(
    ("state", "row"),
    [
        (run("sent", accepted=1), SENT_ONCE),
        (run("sent", accepted=1, refused_after_data=2, refused_rcpt=1), SENT_ONCE),
        (run("sent"), LOST),
        (run("sent", accepted=2), DOUBLED),
        (run("sent", accepted=1, dropped_after_data=1), DOUBLED),
        (run("failed", "Gave up after 3 attempt(s)", refused_after_data=3), FAILED),
        (run("failed"), LOST),
        (run("failed", "Gave up", accepted=1), MISREPORTED),
        (run("unknown", "lost after DATA", dropped_after_data=1), UNKNOWN_SEEN),
        (run("unknown", "worker stopped", accepted=1), UNKNOWN_SEEN),
        (run("unknown", "worker stopped"), UNKNOWN_UNSEEN),
        (run("queued"), LOST),
        (run("sending"), LOST),
        (run("scheduled", refused_rcpt=1), LOST),
    ],
)
def test_each_run_lands_in_its_row(state, row):
    assert classify(state) == row


def test_an_unknown_run_without_a_reason_is_a_bad_run():
    accounting = Accounting.of([run("unknown"), run("sent", accepted=1)])
    assert accounting.count(UNKNOWN_UNSEEN) == 1
    assert accounting.bad_runs() == [run("unknown")]
    assert accounting.total == 2
    assert "total" in accounting.table("T")
