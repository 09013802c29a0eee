from django.urls import path

from queries import api

app_name = "api"
urlpatterns = [
    path("apps/<slug:app>/queries/<str:query>/runs", api.create_run_view, name="create_run"),
    path("runs/<int:run_id>", api.run_view, name="run"),
    path("runs/<int:run_id>/cancel", api.cancel_run_view, name="cancel_run"),
    path("runs/<int:run_id>/stop", api.stop_merge_view, name="stop_merge"),
    path("runs/<int:run_id>/resume", api.resume_merge_view, name="resume_merge"),
    path("runs/<int:run_id>/retry", api.retry_row_view, name="retry_row"),
    path("runs/<int:run_id>/rows", api.merge_rows_view, name="merge_rows"),
]
