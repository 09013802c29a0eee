from django.urls import path

from queries import api

app_name = "api"
urlpatterns = [
    path("apps/<slug:app>/queries/<str:query>/runs", api.create_run_view, name="create_run"),
    path("runs/<int:run_id>", api.run_view, name="run"),
    path("runs/<int:run_id>/cancel", api.cancel_run_view, name="cancel_run"),
]
