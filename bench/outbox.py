"""How fast Kiln's outbox drains queued runs through real Celery workers, each figure
against a plain smtplib loop sending the same message to the same SMTP server in the
same run:

    .venv/bin/python bench/outbox.py [--db sqlite|postgres] [-n N] [--big-mb 25]

1. drain per worker, SMTP connection reuse off, against smtplib with a new connection
   per message;
2. a batch of runs on one datasource (a merge), reuse on, against smtplib reusing one
   connection;
3. two worker processes against one (reuse on);
4. the worker's peak memory sending one attachment of ``--big-mb`` MB, against its size.

The runs are created first (bindings evaluated, fields checked, rows stored, tasks in
Redis) while the workers consume nothing; then every worker starts consuming at once,
and the drain rate is the number of runs over the time from the first claim to the last
result (the runs' own started_at and finished_at). The SMTP server is bench/sink.py, a
minimal asyncio server in its own process that keeps nothing and offers PIPELINING
(Kiln uses it; smtplib does not); its CPU use is printed beside each figure, to show it
is not the bottleneck. PostgreSQL: the server of
KILN_TEST_POSTGRES_URL (a new database on it, dropped after), or a throwaway one
started with scripts/postgres.sh. Worker processes log at WARNING (--worker-log INFO
to compare).
"""

from __future__ import annotations

import argparse
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.smtp_server import free_port  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


class Sink:
    """bench/sink.py in its own process."""

    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "sink.py"), str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> str:
        self.process.terminate()
        return self.process.communicate(timeout=10)[0].strip()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


class Busy:
    """Wall time, and how busy the sink was meanwhile."""

    def __init__(self, sink: Sink):
        self.sink = sink

    def __enter__(self):
        self.cpu, self.started = self.sink.cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        self.sink_busy = (self.sink.cpu_seconds() - self.cpu) / self.seconds


def plain_message(i: int) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"] = "app@kiln.test", "ann@example.com"
    message["Subject"] = f"Welcome, Ann! {i}"
    message.set_content("Hello Ann")
    message.add_alternative("<p>Hello Ann</p>", subtype="html")
    return message


def smtplib_new_connections(sink: Sink, count: int) -> tuple[float, float, float]:
    """Messages/s, the sink's busy share, this process's CPU ms per message."""
    cpu = time.process_time()
    with Busy(sink) as busy:
        for i in range(count):
            with smtplib.SMTP("127.0.0.1", sink.port) as client:
                client.send_message(plain_message(i))
    cpu_ms = (time.process_time() - cpu) * 1000 / count
    return count / busy.seconds, busy.sink_busy, cpu_ms


def smtplib_one_connection(sink: Sink, count: int) -> tuple[float, float, float]:
    cpu = time.process_time()
    with Busy(sink) as busy, smtplib.SMTP("127.0.0.1", sink.port) as client:
        for i in range(count):
            client.send_message(plain_message(i))
    cpu_ms = (time.process_time() - cpu) * 1000 / count
    return count / busy.seconds, busy.sink_busy, cpu_ms


def postgres_database() -> tuple[str, callable]:
    """A new database on the PostgreSQL server given (or a throwaway server)."""
    import psycopg

    stop_server = None
    server = os.environ.get("KILN_TEST_POSTGRES_URL")
    if not server:
        out = subprocess.run(
            ["bash", str(ROOT / "scripts" / "postgres.sh"), "start"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in out.splitlines() if "=" in line
        )
        server = exports["KILN_TEST_POSTGRES_URL"]

        def stop_server():
            subprocess.run(
                ["bash", str(ROOT / "scripts" / "postgres.sh"), "stop", exports["KILN_PG_DIR"]]
            )

    name = f"kiln_bench_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = server.rsplit("/", 1)[0] + "/" + name

    def drop():
        from django.db import connections

        connections.close_all()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if stop_server:
            stop_server()

    return url, drop


def env_tag(env: dict) -> str:
    return "reuse-off" if env.get("KILN_SMTP_REUSE_SECONDS") == "0" else "reuse-on"


class Bench:
    def __init__(self, args):
        self.args = args

    def setup(self) -> None:
        var = tempfile.mkdtemp(prefix="kiln-bench-")
        self.cleanups = []
        if self.args.db == "postgres":
            database_url, drop = postgres_database()
            self.cleanups.append(drop)
        else:
            database_url = f"sqlite:///{var}/bench.sqlite3"
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "kiln.settings",
                "KILN_VAR_DIR": var,
                "DATABASE_URL": database_url,
                "KILN_SMTP_PORTS": "any",
                # Throughput, not abuse: the run limits would stop the batch after 30.
                "KILN_RUNS_PER_USER_PER_MINUTE": "0",
                "KILN_RUNS_PER_APP_PER_HOUR": "0",
                "KILN_SMTP_MAX_ATTACHMENT_BYTES": str((self.args.big_mb + 1) * 1024 * 1024),
                "LOG_LEVEL": "WARNING",
            }
        )
        from tests.support.services import RedisServer

        self.redis = RedisServer().start()
        os.environ["REDIS_URL"] = self.redis.url
        self.cleanups.insert(0, self.redis.stop)

        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from tests.support.apps import make_app
        from workspaces.models import Role, Workspace

        call_command("migrate", verbosity=0)
        self.sink = Sink()
        self.cleanups.insert(0, self.sink.stop)
        self.user = get_user_model().objects.create_user("bench", "b@kiln.test", "bench-pass-1")
        workspace = Workspace.objects.create(name="Bench")
        workspace.add_member(self.user, Role.EDITOR)
        _, self.query = make_app(workspace, self.sink.port)

    def workers(self, count: int, **env) -> list:
        from kiln.celery import app
        from tests.support.services import CeleryWorker

        workers = [
            CeleryWorker(
                self.redis.url,
                os.environ["DATABASE_URL"],
                extra_env={"LOG_LEVEL": self.args.worker_log, **env},
                name=f"bench{i}",
                loglevel=self.args.worker_log,
                profile=f"{self.args.profile}/worker-{env_tag(env)}-{i}.prof"
                if self.args.profile
                else "",
            ).start()
            for i in range(count)
        ]
        names = [w.name for w in workers]
        app.control.cancel_consumer("celery", destination=names, reply=True)
        return workers

    def drain(self, workers: list, count: int, inputs=None) -> dict:
        """Runs/s from the first claim to the last result, the sink's busy share meanwhile,
        the workers' CPU time per run, and how many runs were not sent."""
        from django.db import transaction
        from django.db.models import Max, Min

        from kiln.celery import app
        from queries.execution import create_run
        from queries.models import FINISHED, QueryRun
        from tests.support.apps import welcome_inputs

        with transaction.atomic():
            runs = [
                create_run(self.query, self.user, inputs or welcome_inputs()).pk
                for _ in range(count)
            ]
        done = QueryRun.objects.filter(pk__in=runs, status__in=FINISHED)
        names = [w.name for w in workers]
        cpu = sum(cpu_seconds(w.process.pid) for w in workers)
        with Busy(self.sink) as busy:
            app.control.add_consumer("celery", destination=names, reply=True)
            deadline = time.monotonic() + 300
            while done.count() < count and time.monotonic() < deadline:
                time.sleep(0.05)
        cpu = sum(cpu_seconds(w.process.pid) for w in workers) - cpu
        app.control.cancel_consumer("celery", destination=names, reply=True)
        span = QueryRun.objects.filter(pk__in=runs).aggregate(
            first=Min("started_at"), last=Max("finished_at")
        )
        seconds = (span["last"] - span["first"]).total_seconds()
        return {
            "rate": count / seconds,
            "sink": busy.sink_busy * busy.seconds / seconds,
            "cpu_ms": cpu * 1000 / count,
            "failed": QueryRun.objects.filter(pk__in=runs).exclude(status="sent").count(),
        }

    def big_attachment(self) -> tuple[int, int, int, str]:

        (worker,) = self.workers(1)
        try:
            return self._big_attachment(worker)
        finally:
            worker.stop()

    def _big_attachment(self, worker) -> tuple[int, int, int, str]:
        from queries.models import QueryRun
        from tests.support.apps import welcome_inputs
        from workspaces.files import FileContent

        size = self.args.big_mb * 1024 * 1024
        # Warm up: the worker's peak before the big one includes a small send.
        self.drain([worker], 3)
        before = peak_rss(worker.process.pid)
        data = os.urandom(size)
        # As the run API hands an uploaded file to the bindings.
        inputs = welcome_inputs(files1={"files": [FileContent("big.bin", "x/y", data)]})
        del data
        self.drain([worker], 1, inputs=inputs)
        after = peak_rss(worker.process.pid)
        status = QueryRun.objects.order_by("-pk").values_list("status", flat=True)[0]
        return size, before, after, status

    def run(self) -> None:
        n = self.args.n
        self.setup()
        try:
            rounds = [self.measure(n) for _ in range(self.args.repeat)]
            big = self.big_attachment() if self.args.big_mb else None
        finally:
            # The sink first: what it prints as it stops goes in the report.
            sink_report = self.cleanups[0]()
            for cleanup in self.cleanups[1:]:
                cleanup()
        self.report(n, rounds, big, sink_report)

    def measure(self, n: int) -> dict:
        figures = {}
        figures["plain_new"] = smtplib_new_connections(self.sink, n)
        figures["plain_reuse"] = smtplib_one_connection(self.sink, n)
        workers = self.workers(1, KILN_SMTP_REUSE_SECONDS="0")
        try:
            figures["drain_new"] = self.drain(workers, n)
        finally:
            workers[0].stop()
        workers = self.workers(2)
        try:
            figures["batch_1"] = self.drain(workers[:1], n)
            figures["batch_2"] = self.drain(workers, n)
        finally:
            for w in workers:
                w.stop()
        return figures

    def report(self, n: int, rounds: list[dict], big, sink_report: str) -> None:
        db = "PostgreSQL" if self.args.db == "postgres" else "SQLite"

        def med(key, field=None):
            values = [r[key][field] if field else r[key][0] for r in rounds]
            return statistics.median(values), min(values), max(values)

        def line(label, key, unit):
            rate, low, high = med(key, "rate" if key not in PLAIN else None)
            if key in PLAIN:
                busy = statistics.median(r[key][1] for r in rounds)
                cpu = statistics.median(r[key][2] for r in rounds)
                extra = f"sink CPU {busy:4.0%}, loop CPU {cpu:.2f} ms/msg"
            else:
                busy = statistics.median(r[key]["sink"] for r in rounds)
                cpu = statistics.median(r[key]["cpu_ms"] for r in rounds)
                extra = f"sink CPU {busy:4.0%}, worker CPU {cpu:.2f} ms/run"
            print(f"  {label:<40} {rate:7.1f} {unit} [{low:.0f}-{high:.0f}]  ({extra})")
            return rate

        def ratio(a, b, target):
            print(f"  ratio {a / b:.2f}x (target {target})")

        print(
            f"Kiln outbox drain on {db}: {n} runs per figure, median of {len(rounds)} "
            f"round(s) [min-max]; workers log at {self.args.worker_log}, solo pool"
        )
        print(f"SMTP server: bench/sink.py in its own process, offers PIPELINING ({sink_report})")
        for key in ("drain_new", "batch_1", "batch_2"):
            failed = sum(r[key]["failed"] for r in rounds)
            if failed:
                print(f"  WARNING: {failed} runs of {key} not sent")
        print("1. drain per worker, a new SMTP connection per run")
        a = line("smtplib loop, new connection each", "plain_new", "msg/s ")
        b = line("Kiln, 1 worker, reuse off", "drain_new", "runs/s")
        ratio(b, a, "0.8x")
        print("2. a batch on one datasource, one SMTP connection")
        a = line("smtplib loop, one connection", "plain_reuse", "msg/s ")
        b = line("Kiln, 1 worker, reuse on", "batch_1", "runs/s")
        ratio(b, a, "0.8x")
        print("3. two worker processes against one (reuse on)")
        a = line("Kiln, 1 worker", "batch_1", "runs/s")
        b = line("Kiln, 2 workers", "batch_2", "runs/s")
        ratio(b, a, "1.5x")
        if big:
            size, before, after, status = big
            mb = 1024 * 1024
            print(f"4. one attachment of {size / mb:.0f} MB ({status}), the worker's peak RSS")
            print(f"  before {before / mb:.0f} MB (Django, Celery), after {after / mb:.0f} MB")
            print(
                f"  peak/size {after / size:.2f}x, growth/size "
                f"{(after - before) / size:.2f}x (target under 3x)"
            )


PLAIN = ("plain_new", "plain_reuse")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("-n", type=int, default=500, help="runs per figure")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--big-mb", type=int, default=25, help="0 skips the attachment")
    parser.add_argument("--worker-log", default="WARNING")
    parser.add_argument(
        "--profile", metavar="DIR", help="write a cProfile of each worker process to DIR"
    )
    Bench(parser.parse_args()).run()


if __name__ == "__main__":
    main()
