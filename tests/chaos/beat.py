"""The Celery app of the chaos test's ``celery beat``: Kiln's own, with the outbox sweep
every KILN_SWEEP_EVERY_SECONDS, so that lost tasks and stuck runs are found within
seconds and the test ends in minutes. Only the schedule's period differs from
kiln.settings; the workers run the sweep task as Kiln defines it."""

from __future__ import annotations

import os

from kiln.celery import app

app.conf.beat_schedule = {
    "sweep-outbox": {
        "task": "queries.sweep_outbox",
        "schedule": float(os.environ["KILN_SWEEP_EVERY_SECONDS"]),
    },
}

__all__ = ["app"]
