"""The test services themselves: a real redis-server and a real Celery worker process."""

from __future__ import annotations

import redis


def test_redis_server_answers(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    assert client.ping()
    client.set("kiln", "1")
    assert client.get("kiln") == b"1"


def test_celery_worker_answers_a_ping(celery_worker, redis_server):
    from kiln.celery import app

    replies = app.control.ping(timeout=2)
    assert replies and all(reply[name] == {"ok": "pong"} for reply in replies for name in reply)
    assert "kiln" in celery_worker.output().lower() or celery_worker.process.poll() is None
