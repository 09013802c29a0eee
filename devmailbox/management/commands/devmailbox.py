"""``python manage.py devmailbox``: run the dev mailbox's SMTP server until stopped."""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from devmailbox import server


class Command(BaseCommand):
    help = "Run the dev mailbox: an SMTP server that keeps every message for the web pages."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host",
            default=settings.KILN_DEVMAILBOX_HOST,
            help="Address to listen on (default: KILN_DEVMAILBOX_HOST, %(default)s).",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=settings.KILN_DEVMAILBOX_PORT,
            help="Port to listen on (default: KILN_DEVMAILBOX_PORT, %(default)s).",
        )

    def handle(self, *args, host: str, port: int, **options) -> None:
        if options["verbosity"] < 2:
            # aiosmtpd logs every SMTP command at INFO; one line per message (ours) is
            # enough unless asked for more with -v 2.
            logging.getLogger("mail.log").setLevel(logging.WARNING)
        try:
            controller = server.start(host, port)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from exc

        stop = threading.Event()

        def request_stop(signum: int, frame: object) -> None:
            stop.set()

        # SIGTERM (docker stop, systemd) and Ctrl-C both end in the same clean shutdown,
        # rather than a KeyboardInterrupt traceback or a killed thread mid-write.
        previous = {
            signum: signal.signal(signum, request_stop)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.stdout.write(
                f"Dev mailbox listening on smtp://{host}:{port} — "
                f"messages at {reverse('devmailbox:list')}"
            )
            if not settings.KILN_DEVMAILBOX:
                self.stderr.write(
                    "KILN_DEVMAILBOX is off: messages are stored but the pages are disabled."
                )
            self.stdout.flush()
            while not stop.wait(timeout=1):
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            controller.stop()
            self.stdout.write("Dev mailbox stopped.")
