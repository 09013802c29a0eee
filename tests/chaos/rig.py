"""What the chaos test runs against, and the monkey that breaks it.

The rig: the fault-injecting SMTP server, a redis-server of its own (stopped and started
on the same port), two Celery workers and ``celery beat``, all on the test's PostgreSQL
database, with short timings so that the sweep finds lost tasks and stuck runs within
seconds. The monkey: a thread that, at moments drawn from the seed, kills a worker with
SIGKILL and starts it again, or stops Redis and starts it again.
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from dataclasses import dataclass

from tests.chaos.processes import Beat, Worker
from tests.support.faulty_smtp import FaultRates, FaultySmtpServer
from tests.support.services import RedisServer

#: The workers' and beat's timings, consistent as kiln/settings.py requires (visibility
#: timeout > hard time limit > soft time limit; stuck > hard time limit), and short.
TIMINGS = {
    "KILN_TASK_SOFT_TIME_LIMIT": "5",
    "KILN_TASK_TIME_LIMIT": "6",
    "KILN_BROKER_VISIBILITY_TIMEOUT": "10",
    "KILN_RUN_STUCK_SECONDS": "8",
    "KILN_SWEEP_GRACE_SECONDS": "5",
    "KILN_SWEEP_EVERY_SECONDS": "1",
    "KILN_RUN_RETRY_BASE_SECONDS": "0.2",
    "KILN_RUN_RETRY_MAX_SECONDS": "2",
    "KILN_RUN_MAX_ATTEMPTS": "3",
    "KILN_RUN_RETRY_WINDOW_SECONDS": "0",
    # Throughput, not abuse: the run limits are off.
    "KILN_RUNS_PER_USER_PER_MINUTE": "0",
    "KILN_RUNS_PER_APP_PER_HOUR": "0",
    "KILN_API_CALLS_PER_MINUTE": "0",
}


#: The SMTP server's longest pause (seconds) before its greeting and its reply to DATA:
#: it widens the moments in which a killed worker leaves a run half sent.
SMTP_REPLY_DELAY = 0.05


def postgres_url(db: dict) -> str:
    """The URL of the test database, for the processes the test starts."""
    auth = f"{db['USER']}:{db.get('PASSWORD') or ''}@" if db.get("USER") else ""
    return f"postgres://{auth}{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db['NAME']}"


@dataclass
class Rig:
    smtp: FaultySmtpServer
    redis: RedisServer
    workers: list[Worker]
    beat: Beat

    @classmethod
    def start(cls, seed: int, database_url: str) -> Rig:
        smtp = FaultySmtpServer(seed, FaultRates(reply_delay=SMTP_REPLY_DELAY)).start()
        redis = RedisServer().start()
        env = {
            **os.environ,
            **TIMINGS,
            "REDIS_URL": redis.url,
            "DATABASE_URL": database_url,
            "KILN_SMTP_PORTS": "any",
        }
        workers = [Worker(f"kiln-chaos-{n}-{os.getpid()}", env) for n in (1, 2)]
        rig = cls(smtp, redis, workers, Beat(env))
        for process in (*workers, rig.beat):
            process.start()
        for process in (*workers, rig.beat):
            process.wait_ready()
        return rig

    def heal(self) -> None:
        """Everything running again: what the monkey stopped is started."""
        if self.redis.process is None:
            self.redis.start()
        for worker in self.workers:
            if not worker.running:
                worker.start()

    def stop(self) -> None:
        self.beat.stop()
        for worker in self.workers:
            worker.stop()
        self.redis.stop()
        shutil.rmtree(self.redis.dir, ignore_errors=True)
        shutil.rmtree(self.beat.dir, ignore_errors=True)
        self.smtp.stop()

    def remove_logs(self) -> None:
        for process in (*self.workers, self.beat):
            process.log_path.unlink(missing_ok=True)


class Monkey(threading.Thread):
    """Every 0.5 to 2.5 s, kills a worker (SIGKILL; started again after up to 1.5 s) or
    stops Redis (started again after up to 3 s), until ``stop``.

    It is also the workers' supervisor: a worker (or beat) that exits by itself is
    started again at once, as systemd's Restart=always or compose's restart policy would,
    and noted: Celery's worker may exit when Redis goes away while it holds an
    unacknowledged message ("Unrecoverable error" while restoring it)."""

    def __init__(self, rig: Rig, rng: random.Random, started_at: float):
        super().__init__(name="chaos-monkey", daemon=True)
        self.rig, self.rng, self.started_at = rig, rng, started_at
        self.timeline: list[tuple[float, str]] = []
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            strike_at = time.monotonic() + self.rng.uniform(0.5, 2.5)
            while not self.stopping.wait(0.1):
                self._supervise()
                if time.monotonic() < strike_at:
                    continue
                if self.rng.random() < 0.7:
                    self._kill_worker()
                else:
                    self._restart_redis()
                strike_at = time.monotonic() + self.rng.uniform(0.5, 2.5)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def stop(self) -> None:
        self.stopping.set()
        self.join(60)

    def count(self, prefix: str) -> int:
        return sum(1 for _, what in self.timeline if what.startswith(prefix))

    def _note(self, what: str) -> None:
        self.timeline.append((time.monotonic() - self.started_at, what))

    def _supervise(self) -> None:
        for process in (*self.rig.workers, self.rig.beat):
            if process.process is not None and not process.running:
                code = process.process.returncode
                self._note(f"exited by itself: {process.name} (exit code {code})")
                process.start()

    def _kill_worker(self) -> None:
        # Aimed at a moment when a worker talks to the SMTP server (waiting up to a
        # second for one), so that some kills leave a run half sent.
        aim_until = time.monotonic() + 1
        while not self.rig.smtp.log.open_connections and time.monotonic() < aim_until:
            time.sleep(0.002)
        worker = self.rng.choice(self.rig.workers)
        down = self.rng.uniform(0.1, 1.5)
        self._note(f"SIGKILL {worker.name}, back in {down:.1f} s")
        worker.kill()
        self.stopping.wait(down)
        worker.start()

    def _restart_redis(self) -> None:
        down = self.rng.uniform(0.5, 3.0)
        self._note(f"stop Redis, back in {down:.1f} s")
        self.rig.redis.stop()
        self.stopping.wait(down)
        self.rig.redis.start()
