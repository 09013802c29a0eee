"""Publishing: a frozen copy of an app for its viewers."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max

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
