"""Click to result: how long after the send itself a person or a script sees a run's
outcome, against sending the same message with plain smtplib, in the same run.

    .venv/bin/python bench/latency.py [api|browser|all] [-n N] [--database-url URL]

api      POST /api/v1/apps/<app>/queries/send_welcome/runs, then GET the run's URL with
         ?wait=10, through gunicorn with a real Celery worker on Redis: the time from
         the POST to the GET's answer (status "sent"), median over N. Baseline: one
         plain smtplib send of the same message to the same aiosmtpd sink (a new
         connection each), median over N, interleaved.
browser  In Chromium (Debian's, driven by Playwright), a click on a published page's
         button wired to a send query with a success toast: the time from the click
         event to the frame after the toast is in the page (a MutationObserver on the
         toasts, then requestAnimationFrame), median over N clicks. Twice: the embedded
         default (no REDIS_URL: the task runs eagerly inside the click's request) and
         with a real worker. The same smtplib baseline.

Starts its own aiosmtpd sink, redis-server, gunicorn and Celery worker (solo pool), on a
throwaway SQLite database (or an empty database at --database-url, e.g. the throwaway
PostgreSQL of scripts/postgres.sh). Run limits are turned off: this measures latency.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
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

WARMUP = 5
#: Measures what waits for the run, not abuse protection.
UNLIMITED = {
    "KILN_RUNS_PER_USER_PER_MINUTE": "0",
    "KILN_RUNS_PER_APP_PER_HOUR": "0",
    "KILN_API_CALLS_PER_MINUTE": "0",
}

# The page's own timestamps: the click as dispatched, the toast as added, and the next
# frame after it (when it is painted).
PROBE = """() => {
  const probe = window.kilnProbe = {click: null, added: null, shown: null};
  document.addEventListener("click", (event) => {
    if (event.target.closest("#w-send_btn")) probe.click = performance.now();
  }, true);
  new MutationObserver((records) => {
    if (probe.added !== null) return;
    const toast = records.some((r) => Array.from(r.addedNodes).some(
      (n) => n.nodeType === 1 && (n.matches(".kiln-toast") || n.querySelector(".kiln-toast"))));
    if (!toast) return;
    probe.added = performance.now();
    requestAnimationFrame(() => { probe.shown = performance.now(); });
  }).observe(document.getElementById("kiln-toasts"), {childList: true, subtree: true});
}"""
RESET = """() => {
  document.querySelectorAll("#kiln-toasts .kiln-toast").forEach((t) => t.remove());
  Object.assign(window.kilnProbe, {click: null, added: null, shown: null});
}"""
IDLE = """() => !document.querySelector('.htmx-request, #kiln-pollers .kiln-poller')
  && !document.querySelector('#w-send_btn button[disabled]')"""


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


class Stack:
    """SMTP sink, Redis, database, a gunicorn web server and (optionally) a worker."""

    def __init__(self, database_url: str | None):
        self.var = tempfile.mkdtemp(prefix="kiln-bench-")
        self.database_url = database_url or f"sqlite:///{self.var}/bench.sqlite3"
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "kiln.settings",
                "KILN_VAR_DIR": self.var,
                "DATABASE_URL": self.database_url,
                "KILN_SMTP_PORTS": "any",
                "SECURE_COOKIES": "false",
                "LOG_LEVEL": "WARNING",
                **UNLIMITED,
            }
        )
        self._stack = contextlib.ExitStack()
        self._stack.callback(shutil.rmtree, self.var, ignore_errors=True)

    def __enter__(self) -> Stack:
        from tests.support.services import RedisServer

        self.redis = RedisServer().start()
        self._stack.callback(self.redis.stop)
        os.environ["REDIS_URL"] = self.redis.url

        import django

        django.setup()
        from django.core.management import call_command

        from tests.support.smtp_server import SmtpServer

        call_command("migrate", verbosity=0)
        self.smtp = SmtpServer().start()
        self._stack.callback(self.smtp.stop)
        self._make_data()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()

    def _make_data(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db import transaction

        from builder.models import App, Page, Query, Widget
        from builder.publishing import publish
        from queries.models import ApiToken
        from tests.support.apps import mailer, make_app
        from workspaces.models import Role, Workspace

        user = get_user_model().objects.create_user("bench", "bench@kiln.test", "bench-pass-1")
        workspace = Workspace.objects.create(name="Bench")
        workspace.add_member(user, Role.EDITOR)
        self.api_app, _ = make_app(workspace, self.smtp.port)
        self.token = ApiToken.issue(user)[1]
        # A public page (no sign-in in the browser): one button, one send, one toast.
        app = App.objects.create(workspace=workspace, name="Toast", slug="toast", public=True)
        home = Page.objects.create(app=app, name="Home", slug="home")
        Widget.objects.create(
            page=home,
            name="send_btn",
            type="button",
            properties={"text": "Send"},
            events={
                "click": [
                    {
                        "action": "run_query",
                        "query": "send",
                        "on_success": [
                            {"action": "show_toast", "kind": "success", "message": "Sent"}
                        ],
                    }
                ]
            },
            w=4,
        )
        Query.objects.create(
            app=app,
            name="send",
            datasource=mailer(workspace, self.smtp.port, name="Toast mailer"),
            fields={
                "from": "app@kiln.test",
                "to": "ann@example.com",
                "subject": "Welcome, Ann!",
                "body": "Hello Ann",
            },
        )
        with transaction.atomic():
            publish(app, user)

    @contextlib.contextmanager
    def serving(self, *, worker: bool):
        """gunicorn on a free port (and a Celery worker when ``worker``); its base URL.
        Without a worker, the web server has no REDIS_URL: the embedded default."""
        from tests.support.services import CeleryWorker
        from tests.support.smtp_server import free_port

        env = dict(os.environ)
        if not worker:
            env.pop("REDIS_URL")
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "kiln.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            "1",
            "--threads",
            "8",
            "--log-level",
            "warning",
        ]
        web = subprocess.Popen(cmd, cwd=ROOT, env=env)
        runner = None
        try:
            _wait_http(port)
            if worker:
                runner = CeleryWorker(self.redis.url, self.database_url).start()
            yield f"http://127.0.0.1:{port}", port
        finally:
            if runner is not None:
                runner.stop()
            web.terminate()
            web.wait(15)

    def send_plain(self) -> float:
        """One send of the same message with plain smtplib: the baseline."""
        message = EmailMessage()
        message["From"], message["To"] = "app@kiln.test", "ann@example.com"
        message["Subject"] = "Welcome, Ann!"
        message.set_content("Hello Ann")
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", self.smtp.port) as client:
            client.send_message(message)
        return time.perf_counter() - started


def _wait_http(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def _request(port: int, method: str, url: str, token: str, body: bytes | None = None) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request(method, url, body=body, headers=headers)
    response = connection.getresponse()
    payload = json.loads(response.read())
    if response.status >= 300 and response.status != 202:
        raise RuntimeError(f"{method} {url}: {response.status} {payload}")
    return payload


def bench_api(stack: Stack, count: int) -> None:
    from tests.support.apps import welcome_inputs

    body = json.dumps({"inputs": welcome_inputs()}).encode()
    create = f"/api/v1/apps/{stack.api_app.slug}/queries/send_welcome/runs"
    plain: list[float] = []
    kiln: list[float] = []
    posts: list[float] = []
    with stack.serving(worker=True) as (_, port):
        for i in range(WARMUP + count):
            sent = stack.send_plain()
            started = time.perf_counter()
            run = _request(port, "POST", create, stack.token, body)
            posted = time.perf_counter() - started
            done = _request(port, "GET", f"/api/v1/runs/{run['id']}?wait=10", stack.token)
            took = time.perf_counter() - started
            if done["status"] != "sent":
                raise RuntimeError(f"run {run['id']} ended {done['status']}: {done['error']}")
            if i >= WARMUP:
                plain.append(sent)
                kiln.append(took)
                posts.append(posted)
    send, total = median_ms(plain), median_ms(kiln)
    print(f"API, {count} runs (median): POST + GET ?wait with a Celery worker on Redis")
    print(f"  send alone (plain smtplib):   {send:7.1f} ms")
    print(f"  Kiln POST + GET ?wait:        {total:7.1f} ms")
    print(f"    of which the POST:          {median_ms(posts):7.1f} ms")
    print(f"  difference:                   {total - send:7.1f} ms   (target <= 30 ms)")
    print(f"  ratio kiln/send:              {total / send:7.1f}")


def bench_browser(stack: Stack, count: int) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    plain = [stack.send_plain() for _ in range(count)]
    results: dict[str, list[float]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for mode, worker in (("embedded default (eager)", False), ("Celery worker", True)):
                with stack.serving(worker=worker) as (base, _):
                    results[mode] = _clicks(browser, f"{base}/apps/toast/", count)
        finally:
            browser.close()
    send = median_ms(plain)
    print(f"Browser, {count} clicks each (median): click -> toast painted")
    print(f"  send alone (plain smtplib):   {send:7.1f} ms")
    for mode, times in results.items():
        took = statistics.median(times)
        print(
            f"  {mode + ':':29} {took:7.1f} ms   (target <= 150 ms; "
            f"min {min(times):.1f}, max {max(times):.1f}; ratio to send {took / send:.1f})"
        )


def _clicks(browser, url: str, count: int) -> list[float]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    try:
        page.goto(url)
        page.evaluate(PROBE)
        button = page.locator("#w-send_btn button")
        times = []
        for i in range(WARMUP + count):
            page.evaluate(RESET)
            page.wait_for_function(IDLE)
            button.click()
            page.wait_for_function("() => window.kilnProbe.shown !== null", timeout=15_000)
            probe = page.evaluate("() => window.kilnProbe")
            if i >= WARMUP:
                times.append(probe["shown"] - probe["click"])
        return times
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=("api", "browser", "all"), default="all")
    parser.add_argument("-n", type=int, default=20, help="measured runs or clicks (20)")
    parser.add_argument("--database-url", help="an empty database (default: SQLite file)")
    args = parser.parse_args()
    with Stack(args.database_url) as stack:
        if args.what in ("api", "all"):
            bench_api(stack, args.n)
        if args.what in ("browser", "all"):
            bench_browser(stack, args.n)


if __name__ == "__main__":
    main()
