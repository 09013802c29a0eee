"""The processes the chaos test starts, kills and starts again: Celery workers with a
name each, and ``celery beat``.

Each keeps one log across its restarts (appended, with a line marking each start), so
that a run's history can be read after the test. Readiness is read from that log, not
asked through the broker: the broker may be the thing that is down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.services import ROOT


class _Process:
    """A subprocess with an appended log; ``kill`` is SIGKILL, ``stop`` SIGTERM."""

    label = "process"

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.name = self.label
        fd, log_path = tempfile.mkstemp(prefix=f"kiln-chaos-{self.label}-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None
        self._log_offset = 0

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start at {time.time():.3f}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self.process = subprocess.Popen(
                self.command(), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def stop(self, timeout: float = 15) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_line(self, text: str, timeout: float) -> None:
        """Wait until ``text`` appears in the log since the last start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.label} exited:\n{self.output()[-4000:]}")
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                if text.encode() in log.read():
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.label} not ready in {timeout} s:\n{self.output()[-4000:]}")


class Worker(_Process):
    """``celery -A kiln worker`` with the options of tests.support.services.CeleryWorker,
    and its own node name (two workers on one host must not share one)."""

    label = "worker"

    def __init__(self, name: str, env: dict[str, str]):
        super().__init__(env)
        self.name = name

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "kiln",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{self.name}@%h",
        ]

    def wait_ready(self, timeout: float = 30) -> None:
        self.wait_for_line(" ready.", timeout)


class Beat(_Process):
    """``celery beat`` with the sweep every KILN_SWEEP_EVERY_SECONDS (tests.chaos.beat)."""

    label = "beat"

    def __init__(self, env: dict[str, str]):
        super().__init__(env)
        self.dir = tempfile.mkdtemp(prefix="kiln-chaos-beat-")

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.chaos.beat",
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(Path(self.dir) / "schedule"),
            "--pidfile=",
        ]

    def wait_ready(self, timeout: float = 30) -> None:
        self.wait_for_line("beat: Starting", timeout)
