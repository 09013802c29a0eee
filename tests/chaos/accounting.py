"""The chaos test's accounting: each run put in exactly one row, from its status in the
database and what the SMTP server saw for its recipient; the table printed at the end.

A message counts as handed over when the server received all of it and either accepted
it or dropped the connection before replying (a real server may have delivered it).
A 451 after DATA is not handed over: the server said it did not take the message.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tests.support.faulty_smtp import ACCEPTED, HANDED_OVER

SENT_ONCE = "sent exactly once"
FAILED = "failed, with a reason"
UNKNOWN_SEEN = "unknown, the server has the message"
UNKNOWN_UNSEEN = "unknown, the server never got it"
MISREPORTED = "failed, yet the server has it"
LOST = "lost"
DOUBLED = "doubled"

ROWS = (
    (SENT_ONCE, "status sent, accepted by the server once"),
    (FAILED, "status failed, error set, nothing handed over"),
    (UNKNOWN_SEEN, "status unknown, whole message received (accepted or cut before reply)"),
    (UNKNOWN_UNSEEN, "status unknown, worker died after claiming, before DATA ended"),
    (MISREPORTED, "status failed although handed over"),
    (LOST, "not finished, sent but never accepted, or failed without a reason"),
    (DOUBLED, "handed over more than once"),
)
#: Rows that must be empty.
BAD = (MISREPORTED, LOST, DOUBLED)


@dataclass(frozen=True)
class RunState:
    run_id: int
    status: str
    error: str
    seen: Counter

    @property
    def handed_over(self) -> int:
        return sum(self.seen[o] for o in HANDED_OVER)


def classify(run: RunState) -> str:
    if run.handed_over > 1:
        return DOUBLED
    if run.status == "sent":
        return SENT_ONCE if run.seen[ACCEPTED] == 1 else LOST
    if run.status == "failed":
        if run.handed_over:
            return MISREPORTED
        return FAILED if run.error else LOST
    if run.status == "unknown":
        return UNKNOWN_SEEN if run.handed_over else UNKNOWN_UNSEEN
    return LOST


@dataclass
class Accounting:
    rows: dict[str, list[RunState]] = field(default_factory=dict)

    @classmethod
    def of(cls, runs: list[RunState]) -> Accounting:
        accounting = cls({name: [] for name, _ in ROWS})
        for run in runs:
            accounting.rows[classify(run)].append(run)
        return accounting

    def count(self, row: str) -> int:
        return len(self.rows[row])

    @property
    def total(self) -> int:
        return sum(len(runs) for runs in self.rows.values())

    def unknown_without_reason(self) -> list[RunState]:
        return [r for row in (UNKNOWN_SEEN, UNKNOWN_UNSEEN) for r in self.rows[row] if not r.error]

    def bad_runs(self) -> list[RunState]:
        return [r for row in BAD for r in self.rows[row]] + self.unknown_without_reason()

    def table(self, title: str) -> str:
        width = max(len(name) for name, _ in ROWS)
        lines = [title, f"{'row':<{width}}  {'runs':>6}  meaning", "-" * (width + 70)]
        for name, meaning in ROWS:
            lines.append(f"{name:<{width}}  {self.count(name):>6}  {meaning}")
        lines.append("-" * (width + 70))
        lines.append(f"{'total':<{width}}  {self.total:>6}")
        return "\n".join(lines)
