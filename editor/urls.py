"""The editor's URLs, one module per part of the editor."""

from django.urls import include, path

from editor import urls_apps, urls_canvas, urls_outbox, urls_queries

app_name = "editor"
urlpatterns = [
    path("", include(urls_apps)),
    path("", include(urls_canvas)),
    path("", include(urls_queries)),
    path("", include(urls_outbox)),
]
