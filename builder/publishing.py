"""Publishing: a frozen copy of an app for its viewers."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max, OuterRef, QuerySet, Subquery

from builder.models import App, AppVersion


@transaction.atomic
def publish(app: App, user=None) -> AppVersion:
    App.objects.select_for_update().filter(pk=app.pk).first()
    number = (app.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    return AppVersion.objects.create(
        app=app,
        number=number,
        document=app.to_document().model_dump(mode="json"),
        published_by=user,
    )


def published(app: App) -> AppVersion | None:
    return app.versions.order_by("-number").first()


def with_published(apps: QuerySet[App]) -> QuerySet[App]:
    """``apps`` with their published version's ``published_version_id`` and
    ``published_version_at`` (None when not published), read in the apps' own SQL
    query: a viewer's request finds the app and its version in one."""
    latest = AppVersion.objects.filter(app=OuterRef("pk")).order_by("-number")
    return apps.annotate(
        published_version_id=Subquery(latest.values("pk")[:1]),
        published_version_at=Subquery(latest.values("published_at")[:1]),
    )
