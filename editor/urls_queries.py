"""The query editor's URLs (included under "" in the ``editor`` namespace)."""

from django.urls import path

from editor import queries

urlpatterns = [
    path("edit/<slug:app>/queries/", queries.query_list, name="queries"),
    path("edit/<slug:app>/queries/<str:name>/", queries.query_detail, name="query"),
    path("edit/<slug:app>/queries/<str:name>/save", queries.query_save, name="query_save"),
    path("edit/<slug:app>/queries/<str:name>/run", queries.query_run, name="query_run"),
    path(
        "edit/<slug:app>/queries/<str:name>/preview",
        queries.query_preview,
        name="query_preview",
    ),
    path("edit/<slug:app>/queries/<str:name>/delete", queries.query_delete, name="query_delete"),
    path("edit/<slug:app>/evaluate", queries.evaluate_binding, name="evaluate"),
]
