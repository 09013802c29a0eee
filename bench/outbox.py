"""Emails per second through Kiln's outbox and a real Celery worker, against a plain
smtplib loop sending the same messages to the same SMTP server, in the same run.

    .venv/bin/python bench/outbox.py [N]

Starts its own aiosmtpd server, redis-server (Debian's package) and one worker
process (solo pool), on a throwaway SQLite database. Kiln's number includes everything a
run does: evaluating bindings, checking fields, storing the run, enqueueing, claiming,
building the message, one SMTP connection per run, and recording the result.
"""

from __future__ import annotations

import os
import smtplib
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(count: int) -> None:
    var = tempfile.mkdtemp(prefix="kiln-bench-")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "kiln.settings",
            "KILN_VAR_DIR": var,
            "DATABASE_URL": f"sqlite:///{var}/bench.sqlite3",
            "KILN_SMTP_PORTS": "any",
            # Throughput, not abuse: the run limits would stop the batch after 30.
            "KILN_RUNS_PER_USER_PER_MINUTE": "0",
            "KILN_RUNS_PER_APP_PER_HOUR": "0",
            "LOG_LEVEL": "WARNING",
        }
    )
    from tests.support.services import CeleryWorker, RedisServer

    redis_server = RedisServer().start()
    os.environ["REDIS_URL"] = redis_server.url

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from queries.execution import create_run
    from queries.models import QueryRun
    from tests.support.apps import make_app, welcome_inputs
    from tests.support.smtp_server import SmtpServer
    from workspaces.models import Role, Workspace

    call_command("migrate", verbosity=0)
    smtp = SmtpServer().start()
    user = get_user_model().objects.create_user("bench", "bench@kiln.test", "bench-pass-1")
    workspace = Workspace.objects.create(name="Bench")
    workspace.add_member(user, Role.EDITOR)
    _, query = make_app(workspace, smtp.port)
    worker = CeleryWorker(redis_server.url, os.environ["DATABASE_URL"]).start()
    try:
        # Plain smtplib: the same message shape, one connection per message.
        started = time.perf_counter()
        for i in range(count):
            message = EmailMessage()
            message["From"], message["To"] = "app@kiln.test", "ann@example.com"
            message["Subject"] = f"Welcome, Ann! {i}"
            message.set_content("Hello Ann")
            message.add_alternative("<p>Hello Ann</p>", subtype="html")
            with smtplib.SMTP("127.0.0.1", smtp.port) as client:
                client.send_message(message)
        plain = count / (time.perf_counter() - started)

        started = time.perf_counter()
        runs = [create_run(query, user, welcome_inputs()).pk for _ in range(count)]
        created = time.perf_counter() - started
        pending = QueryRun.objects.filter(pk__in=runs).exclude(
            status__in=["sent", "failed", "unknown"]
        )
        while pending.exists():
            time.sleep(0.02)
        kiln = count / (time.perf_counter() - started)
        failed = QueryRun.objects.filter(pk__in=runs, status="failed").count()
    finally:
        worker.stop()
        smtp.stop()
        redis_server.stop()

    print(f"messages: {count} each way; failed Kiln runs: {failed}")
    print(f"(Kiln: {created:.2f} s to create and enqueue the runs, the rest in the worker)")
    print(f"plain smtplib loop:          {plain:8.1f} emails/s")
    print(f"Kiln outbox + Celery worker: {kiln:8.1f} emails/s")
    print(f"ratio kiln/plain:            {kiln / plain:8.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
