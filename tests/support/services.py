"""A real redis-server and a real Celery worker process, started by the tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kombu.pools
import redis

from tests.support.smtp_server import free_port

ROOT = Path(__file__).resolve().parents[2]


class RedisServer:
    def __init__(self):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="kiln-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._cmd = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.dir,
        ]
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            self._cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def use_broker(url: str, *, eager: bool) -> tuple[str, bool]:
    """Point this process's Celery app at ``url``; returns the previous setting."""
    from kiln.celery import app

    previous = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = url, eager
    # Connections already pooled still lead to the previous broker: drop them all
    # (kombu keeps a registry of pools per broker, beside the app's own reference).
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    return previous


class CeleryWorker:
    """``celery -A kiln worker`` in its own process, against ``redis_url`` and the
    test database (a SQLite file, or the same PostgreSQL database).

    ``cwd`` runs it from another directory (the code is still found through
    PYTHONPATH), as a worker on another machine would be; ``name`` tells several
    workers apart (each answers its own ping). ``pool="prefork"`` runs the task in a
    child process, as production does (time limits need it); ``command="beat"`` runs
    Celery beat instead of a worker."""

    def __init__(
        self,
        redis_url: str,
        database_url: str,
        extra_env: dict | None = None,
        *,
        cwd: str | Path | None = None,
        name: str = "",
        loglevel: str = "INFO",
        profile: str = "",
        pool: str = "solo",
        command: str = "worker",
    ):
        self.redis_url = redis_url
        self.loglevel = loglevel
        #: A file to write a cProfile of the worker to, when it stops.
        self.profile = profile
        self.cwd = Path(cwd) if cwd else ROOT
        self.name = f"kiln-test-{name or 'worker'}-{os.getpid()}@{socket.gethostname()}"
        self.pool = pool
        self.command = command
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "KILN_SMTP_PORTS": "any",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            **(extra_env or {}),
        }
        fd, self.log_path = tempfile.mkstemp(prefix="kiln-worker-", suffix=".log")
        os.close(fd)
        self.process: subprocess.Popen | None = None

    def start(self) -> CeleryWorker:
        profiler = ["-m", "cProfile", "-o", self.profile] if self.profile else []
        cmd = [
            sys.executable,
            *profiler,
            "-m",
            "celery",
            "-A",
            "kiln",
            self.command,
            f"--loglevel={self.loglevel}",
        ]
        if self.command == "beat":
            cmd += ["--schedule", self.log_path + ".schedule"]
        else:
            cmd += [
                f"--pool={self.pool}",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
                "-n",
                self.name,
            ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        if self.command != "beat":
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        from kiln.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Celery worker exited:\n{self.output()}")
            if app.control.ping(destination=[self.name], timeout=0.5):
                return
        raise RuntimeError(f"Celery worker did not answer in {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
