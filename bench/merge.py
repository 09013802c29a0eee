"""How fast a mail merge sends, against a plain smtplib loop that reuses one connection
to the same SMTP server, in the same run:

    .venv/bin/python bench/merge.py [-n 500] [--repeat 3] [--db sqlite|postgres]

A merge of N rows (a Table's data: one personalised email each) is started as the run
API starts one (bindings evaluated and each row's message built in the request, rows
stored, one task enqueued) while the worker consumes nothing; then one Celery worker
(solo pool, SMTP connection reuse on) starts consuming, and the merge's rate is its N
emails over the time from then until the merge has finished (the walk that enqueues the
rows included); beside it, over the rows' own span (first claim to last result, as
bench/outbox.py measures its drain). The creation time of the merge (the web request's
share) is printed too. The SMTP server is bench/sink.py in its own process (bench/outbox.py).
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import sys
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.outbox import Bench, Busy, Sink  # noqa: E402


def personalised(i: int) -> EmailMessage:
    """The message a merge row sends (tests/support/merge.py MERGE_FIELDS), built the
    usual way."""
    message = EmailMessage()
    message["From"], message["To"] = "Kiln <app@kiln.test>", f"person{i}@example.com"
    message["Subject"] = f"Hello Person {i} (row {i + 1})"
    message.set_content(f"Dear Person {i}, this is message {i}.")
    return message


def smtplib_loop(sink: Sink, count: int) -> float:
    """Messages/s of a plain loop, one connection, building each message."""
    with Busy(sink) as busy, smtplib.SMTP("127.0.0.1", sink.port) as client:
        for i in range(count):
            client.send_message(personalised(i))
    return count / busy.seconds


class MergeBench(Bench):
    def setup(self) -> None:
        super().setup()
        from tests.support.merge import make_merge_app

        _, self.merge_query = make_merge_app(self.query.app.workspace, self.sink.port)

    def merge(self, worker, count: int) -> tuple[float, float, float, str]:
        """Emails/s of one merge through ``worker`` (from the consumer's start to the
        merge's end, and over its rows' own span: first claim to last result), its
        creation time, its status."""
        from django.db.models import Max, Min

        from kiln.celery import app
        from queries.merge import start_merge
        from queries.models import QueryRun
        from tests.support.merge import people

        rows = people(count)
        started = time.perf_counter()
        parent = start_merge(self.merge_query, self.user, {"table1": {"data": rows}})
        created = time.perf_counter() - started
        began = time.perf_counter()
        app.control.add_consumer("celery", destination=[worker.name], reply=True)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            parent = QueryRun.objects.get(pk=parent.pk)
            if parent.finished:
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - began
        app.control.cancel_consumer("celery", destination=[worker.name], reply=True)
        progress = parent.progress()
        if progress["sent"] != count:
            print(f"  WARNING: {count - progress['sent']} rows not sent ({progress})")
        span = parent.children.aggregate(first=Min("started_at"), last=Max("finished_at"))
        rows_seconds = (span["last"] - span["first"]).total_seconds()
        return count / seconds, count / rows_seconds, created, parent.status

    def measure(self, n: int) -> dict:
        plain = smtplib_loop(self.sink, n)
        (worker,) = self.workers(1)
        try:
            rate, rows_rate, created, status = self.merge(worker, n)
        finally:
            worker.stop()
        return {
            "plain": plain,
            "merge": rate,
            "rows": rows_rate,
            "created": created,
            "status": status,
        }

    def run(self) -> None:
        n = self.args.n
        self.setup()
        try:
            rounds = [self.measure(n) for _ in range(self.args.repeat)]
        finally:
            sink_report = self.cleanups[0]()
            for cleanup in self.cleanups[1:]:
                cleanup()
        db = "PostgreSQL" if self.args.db == "postgres" else "SQLite"
        plain = statistics.median(r["plain"] for r in rounds)
        merge = statistics.median(r["merge"] for r in rounds)
        rows = statistics.median(r["rows"] for r in rounds)
        created = statistics.median(r["created"] for r in rounds)
        print(
            f"Mail merge of {n} rows on {db}, 1 worker (solo pool, connection reuse on), "
            f"median of {len(rounds)} round(s); statuses {[r['status'] for r in rounds]}"
        )
        print(f"SMTP server: bench/sink.py in its own process ({sink_report})")
        print(f"  smtplib loop, one connection        {plain:7.1f} emails/s")
        print(f"  Kiln merge, 1 worker                {merge:7.1f} emails/s")
        print(f"  ratio {merge / plain:.2f}x")
        print(f"  Kiln merge, its rows' span only     {rows:7.1f} emails/s (first claim to last)")
        print(f"  ratio {rows / plain:.2f}x")
        print(f"  creating the merge (the request):   {created:.2f} s ({n / created:.0f} rows/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("-n", type=int, default=500, help="rows of the merge")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--worker-log", default="WARNING")
    parser.add_argument(
        "--profile", metavar="DIR", help="write a cProfile of the worker process to DIR"
    )
    args = parser.parse_args()
    args.big_mb = 0
    args.profile = getattr(args, "profile", None) or ""
    MergeBench(args).run()


if __name__ == "__main__":
    main()
