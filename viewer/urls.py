from django.urls import path

from viewer import views as viewer

app_name = "viewer"


def _routes(prefix: str, name: str, preview: bool) -> list:
    """The same views for the published app and, under preview/, the current draft."""
    kw = {"preview": preview}
    return [
        path(f"{prefix}", viewer.page, kw, name=name),
        path(f"{prefix}<slug:page>/", viewer.page, kw, name=f"{name}_page"),
        path(f"{prefix}<slug:page>/events", viewer.event, kw, name=f"{name}_event"),
        path(f"{prefix}<slug:page>/load", viewer.load, kw, name=f"{name}_load"),
        path(f"{prefix}<slug:page>/widgets/<str:name>", viewer.widget, kw, name=f"{name}_widget"),
        path(f"{prefix}<slug:page>/runs/<int:run_id>/poll", viewer.poll, kw, name=f"{name}_poll"),
        path(
            f"{prefix}<slug:page>/merges/count", viewer.merge_count, kw, name=f"{name}_merge_count"
        ),
        path(f"{prefix}<slug:page>/merges/<int:run_id>", viewer.merge, kw, name=f"{name}_merge"),
        path(
            f"{prefix}<slug:page>/merges/<int:run_id>/stop",
            viewer.merge_stop,
            kw,
            name=f"{name}_merge_stop",
        ),
        path(
            f"{prefix}<slug:page>/merges/<int:run_id>/resume",
            viewer.merge_resume,
            kw,
            name=f"{name}_merge_resume",
        ),
        path(
            f"{prefix}<slug:page>/merges/<int:run_id>/rows/<int:row_id>/retry",
            viewer.merge_retry,
            kw,
            name=f"{name}_merge_retry",
        ),
    ]


urlpatterns = [
    path("<slug:app>/runs/<int:run_id>/download", viewer.download, name="download"),
    *_routes("<slug:app>/preview/", "preview", True),
    *_routes("<slug:app>/", "app", False),
]
