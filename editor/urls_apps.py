"""The editor's apps and pages: the workspace's apps list, app and page actions, publish.

Action URLs have no trailing slash, so that they never look like a page of the canvas.
"""

from __future__ import annotations

from django.urls import path

from editor import apps

urlpatterns = [
    # The workspace's apps
    path("w/<slug:workspace>/apps/", apps.app_list, name="apps"),
    path("w/<slug:workspace>/apps/new", apps.app_create, name="app_create"),
    path("w/<slug:workspace>/apps/import", apps.app_import, name="app_import"),
    # One app
    path("edit/<slug:app>/", apps.app_open, name="app"),
    path("edit/<slug:app>/publish", apps.app_publish, name="publish"),
    path("edit/<slug:app>/public", apps.app_public, name="app_public"),
    path("edit/<slug:app>/rename", apps.app_rename, name="app_rename"),
    path("edit/<slug:app>/duplicate", apps.app_duplicate, name="app_duplicate"),
    path("edit/<slug:app>/delete", apps.app_delete, name="app_delete"),
    path("edit/<slug:app>/export", apps.app_export, name="app_export"),
    # Its pages
    path("edit/<slug:app>/pages/add", apps.page_add, name="page_add"),
    path("edit/<slug:app>/pages/reorder", apps.page_reorder, name="page_reorder"),
    path("edit/<slug:app>/pages/<slug:page>/rename", apps.page_rename, name="page_rename"),
    path("edit/<slug:app>/pages/<slug:page>/delete", apps.page_delete, name="page_delete"),
]
