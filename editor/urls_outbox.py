"""The outbox pages: a workspace's runs and one app's, one run, its actions, CSV.

Action URLs have no trailing slash, as in the rest of the editor."""

from __future__ import annotations

from django.urls import path

from editor import outbox

urlpatterns = [
    path("w/<slug:workspace>/outbox/", outbox.workspace_outbox, name="outbox"),
    path("w/<slug:workspace>/outbox/export.csv", outbox.workspace_outbox_csv, name="outbox_csv"),
    path("w/<slug:workspace>/outbox/<int:run>/", outbox.run_detail, name="outbox_run"),
    path("w/<slug:workspace>/outbox/<int:run>/html", outbox.run_html, name="outbox_run_html"),
    path("w/<slug:workspace>/outbox/<int:run>/resend", outbox.run_resend, name="outbox_resend"),
    path("w/<slug:workspace>/outbox/<int:run>/cancel", outbox.run_cancel, name="outbox_cancel"),
    path("edit/<slug:app>/outbox/", outbox.app_outbox, name="app_outbox"),
    path("edit/<slug:app>/outbox/export.csv", outbox.app_outbox_csv, name="app_outbox_csv"),
]
