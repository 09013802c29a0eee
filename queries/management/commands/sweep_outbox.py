"""Re-enqueue runs whose task was lost, and mark runs stuck mid-send as unknown.

Celery beat runs the same sweep every KILN_SWEEP_EVERY_SECONDS (30 s); this command is
for machines with no beat (the embedded default), once or in a loop.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from queries.tasks import sweep


class Command(BaseCommand):
    help = "Sweep the outbox once, or every N seconds with --loop N."

    def add_arguments(self, parser):
        parser.add_argument("--loop", type=float, default=0, metavar="SECONDS")

    def handle(self, *args, loop: float, **options):
        while True:
            counts = sweep()
            if counts["enqueued"] or counts["unknown"] or not loop:
                self.stdout.write(
                    f"enqueued {counts['enqueued']} run(s); "
                    f"marked {counts['unknown']} stuck run(s) unknown"
                )
            if not loop:
                return
            time.sleep(loop)
