from django.urls import path

from builder import viewer

app_name = "viewer"
urlpatterns = [
    path("<slug:app>/", viewer.page, name="app"),
    path("<slug:app>/runs/<int:run_id>/download", viewer.download, name="download"),
    path("<slug:app>/<slug:page>/", viewer.page, name="page"),
    path("<slug:app>/<slug:page>/events", viewer.event, name="event"),
    path("<slug:app>/<slug:page>/widgets/<str:name>", viewer.widget, name="widget"),
    path("<slug:app>/<slug:page>/runs/<int:run_id>/poll", viewer.poll, name="poll"),
]
