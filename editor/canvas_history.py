"""Undo and redo for the page editor.

Every change to a page's widgets goes through :func:`record`, which stores a ``PageEdit``
with the whole list of the page's widgets before and after the change. Undo puts the
``before`` of the latest edit that is not undone back; redo puts the ``after`` of the
earliest undone edit back; a new change drops the undone edits (there is no redo after a
new change). Putting a snapshot back deletes the page's widgets and creates them again
from it, keeping their names, so a deleted widget comes back with its properties and
events (its database id is new: the editor addresses widgets by name).

Typing in the property pane saves after each pause; those saves are one undo step, not
one per pause: a change given a ``merge`` key (the property it edits) updates the latest
edit instead of adding one when that edit is not undone, has the same key and was last
changed less than :data:`MERGE_SECONDS` ago. The pane asks for a new step (``fresh``) on
the first save after the field gains focus, so leaving the field ends the step.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from builder.models import Page, PageEdit
from builder.schema import STORED, WidgetDocument
from workspaces import audit
from workspaces.audit import Action

#: Edits kept per page; older ones can no longer be undone.
HISTORY_LIMIT = 200
#: Saves of the same property closer than this to the previous one are one undo step.
MERGE_SECONDS = 5

T = TypeVar("T")


def snapshot(page: Page) -> list[dict]:
    """The page's widgets as dumped ``WidgetDocument`` objects (what ``PageEdit`` stores), each
    parent before its children, in layout order."""
    return [widget.model_dump(mode="json") for widget in page.widget_documents()]


def restore(page: Page, widgets: list[dict]) -> None:
    """Makes the page's widgets exactly ``widgets`` (a :func:`snapshot`: parents first)."""
    page.replace_widgets([WidgetDocument.model_validate(item, context=STORED) for item in widgets])


def record(
    page: Page,
    summary: str,
    change: Callable[[], T],
    *,
    request: HttpRequest | None = None,
    merge: bool = False,
) -> T:
    """Runs ``change`` (which edits the page's widgets) and stores it as one edit, and in
    the audit log as a change of the page by the request's user.

    Nothing is stored when the widgets are the same afterwards (a property saved with the
    value it had). With ``merge``, the change joins the latest edit when that one has the
    same summary, is not undone and is recent (see the module's docstring)."""
    with transaction.atomic():
        # Serializes the edits of one page (a no-op on SQLite, which locks the database).
        Page.objects.select_for_update().filter(pk=page.pk).first()
        before = snapshot(page)
        result = change()
        after = snapshot(page)
        if before != after:
            summary = summary[:200]
            latest = page.edits.order_by("-id").first() if merge else None
            if latest is not None and _joins(latest, summary):
                # Already in the audit log as this step.
                _join(latest, after)
                return result
            page.edits.filter(undone=True).delete()
            PageEdit.objects.create(page=page, summary=summary, before=before, after=after)
            _prune(page)
            audit.record(
                page.app.workspace,
                Action.CHANGED,
                "page",
                f"{page.app.name} / {page.name}",
                request=request,
                detail={"edit": summary[:200]},
            )
    return result


def _joins(latest: PageEdit, summary: str) -> bool:
    recent = timezone.now() - latest.created_at < timedelta(seconds=MERGE_SECONDS)
    return not latest.undone and latest.summary == summary and recent


def _join(latest: PageEdit, after: list[dict]) -> None:
    """Makes ``latest`` end at ``after``; its time becomes now, so that a step lasts as long
    as the typing does. Typed back to where it started, the step is no step at all."""
    if after == latest.before:
        latest.delete()
        return
    PageEdit.objects.filter(pk=latest.pk).update(after=after, created_at=timezone.now())


def _prune(page: Page) -> None:
    old = page.edits.order_by("-id").values_list("id", flat=True)[HISTORY_LIMIT:]
    ids = list(old)
    if ids:
        page.edits.filter(id__in=ids).delete()


def next_undo(page: Page) -> PageEdit | None:
    return page.edits.filter(undone=False).order_by("-id").first()


def next_redo(page: Page) -> PageEdit | None:
    return page.edits.filter(undone=True).order_by("id").first()


def undo(page: Page) -> PageEdit | None:
    """Puts the page back as it was before its latest edit; None when there is none."""
    return _step(page, backwards=True)


def redo(page: Page) -> PageEdit | None:
    """Applies the earliest undone edit again; None when there is none."""
    return _step(page, backwards=False)


def _step(page: Page, *, backwards: bool) -> PageEdit | None:
    with transaction.atomic():
        Page.objects.select_for_update().filter(pk=page.pk).first()
        edit = next_undo(page) if backwards else next_redo(page)
        if edit is None:
            return None
        restore(page, edit.before if backwards else edit.after)
        edit.undone = backwards
        edit.save(update_fields=["undone"])
        return edit
