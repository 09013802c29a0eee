from __future__ import annotations

import os

from celery import Celery
from celery.fixups.django import DjangoFixup, DjangoWorkerFixup
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kiln.settings")


class KeepConnections(DjangoWorkerFixup):
    """Celery's Django fixup closes every database connection before and after each
    task, ignoring CONN_MAX_AGE: on PostgreSQL a worker then spends a large share of its
    time connecting. Between tasks this one does what Django does between requests
    (``close_old_connections``): a connection is kept up to CONN_MAX_AGE, and closed
    when it is broken or left in a failed transaction. The fixup's other duties (closing
    inherited connections in a forked child, closing caches) stay as they are."""

    def close_database(self, **kwargs) -> None:
        close_old_connections()


app = Celery("kiln")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery keeps its fixups in a private list; its worker fixup has a public setter.
for fixup in app._fixups:
    if isinstance(fixup, DjangoFixup):
        fixup.worker_fixup = KeepConnections(app)
app.autodiscover_tasks()
