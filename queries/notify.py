"""Waking whoever waits for a run (the run API's ``?wait=``, the editor's Run, the
viewer's click and poller) as soon as the run ends, instead of sleeping in steps.

The worker publishes on a Redis channel of the run's own when it records an outcome
(``notify_finished``); a waiter subscribes to that channel *before* it reads the run
again (``RunWaiter``), so an end recorded between its read and its wait still wakes it.
The channel lives on the Celery broker this process uses: where there is none (the
embedded default: tasks run eagerly, so a run started by this request has already ended)
or Redis cannot be reached, waiters fall back to reading the run every
``POLL_STEP_SECONDS``. A lost message costs at most ``RECHECK_SECONDS``: a subscribed
waiter reads the run again that often anyway.
"""

from __future__ import annotations

import functools
import logging
import time

import redis
from celery import current_app
from django.db import transaction

log = logging.getLogger(__name__)

#: How often a waiter with no channel reads the run again.
POLL_STEP_SECONDS = 0.1
#: The longest a subscribed waiter goes without reading the run again.
RECHECK_SECONDS = 1.0
#: How long a subscription may take to be confirmed before the waiter polls instead.
SUBSCRIBE_TIMEOUT_SECONDS = 0.5


def channel(run_id: int) -> str:
    return f"kiln:run:{run_id}:ended"


def broker_url() -> str:
    """The Redis URL of this process's Celery broker; empty when tasks run eagerly or
    the broker is not Redis (nothing else can end a run while we wait)."""
    conf = current_app.conf
    url = str(conf.broker_url or "")
    if conf.task_always_eager or not url.startswith(("redis://", "rediss://", "unix://")):
        return ""
    return url


@functools.cache
def _client(url: str) -> redis.Redis:
    # Short timeouts: Redis down must cost a waiter a fraction of a second, never the
    # request. redis-py's pool reconnects after a fork (Celery's prefork children).
    return redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=0.5)


def notify_finished(run_id: int) -> None:
    """Wake the waiters of ``run_id``: it ended, or failed once and waits for a retry.
    Sent once the outcome is committed (at once outside a transaction), so a woken
    waiter reads it. A Redis failure is logged, never raised: the outcome is recorded,
    and waiters read the run again within RECHECK_SECONDS."""
    url = broker_url()
    if url:
        transaction.on_commit(functools.partial(_publish, url, run_id))


def _publish(url: str, run_id: int) -> None:
    try:
        _client(url).publish(channel(run_id), b"1")
    except redis.RedisError as exc:
        log.warning("could not wake the waiters of run %s: %s", run_id, exc)


class RunWaiter:
    """Waits for one run's end message. Use as a context manager: enter (subscribe),
    read the run, then ``wait`` and read it again until it has ended or time is up;
    leaving unsubscribes (QueryRun.wait does exactly this).

        with RunWaiter(run.pk) as waiter:
            run.refresh_from_db()
            while not run.finished and time_left():
                waiter.wait(time_left())
                run.refresh_from_db()
    """

    def __init__(self, run_id: int):
        self.run_id = run_id
        self._pubsub: redis.client.PubSub | None = None

    @property
    def subscribed(self) -> bool:
        return self._pubsub is not None

    def __enter__(self) -> RunWaiter:
        url = broker_url()
        if not url:
            return self
        pubsub = _client(url).pubsub()
        try:
            pubsub.subscribe(channel(self.run_id))
            # Only a confirmed subscription sees every message published after it.
            confirmed = pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT_SECONDS)
            if confirmed is None or confirmed["type"] != "subscribe":
                raise redis.RedisError("the subscription was not confirmed in time")
        except (redis.RedisError, OSError) as exc:
            log.warning("waiting for run %s by reading it again: %s", self.run_id, exc)
            self._close(pubsub)
            return self
        self._pubsub = pubsub
        return self

    def __exit__(self, *exc_info) -> None:
        if self._pubsub is not None:
            self._close(self._pubsub)
            self._pubsub = None

    def wait(self, seconds: float) -> bool:
        """Up to ``seconds`` for the run's end message (never longer than
        RECHECK_SECONDS when subscribed, POLL_STEP_SECONDS when not). True when the
        message came: read the run again now."""
        seconds = max(seconds, 0.0)
        if self._pubsub is not None:
            try:
                message = self._pubsub.get_message(timeout=min(seconds, RECHECK_SECONDS))
            except (redis.RedisError, OSError) as exc:
                log.warning("lost the channel of run %s, reading it again: %s", self.run_id, exc)
                self._close(self._pubsub)
                self._pubsub = None
                return False
            woken = message is not None and message["type"] == "message"
            if woken:
                log.debug("run %s: waiter woken by its end", self.run_id)
            return woken
        time.sleep(min(seconds, POLL_STEP_SECONDS))
        return False

    @staticmethod
    def _close(pubsub: redis.client.PubSub) -> None:
        try:
            pubsub.close()
        except (redis.RedisError, OSError):
            log.debug("closing a run's channel failed", exc_info=True)
