"""The workspace's apps and an app's pages, in the editor; and publishing.

Every action is a plain form post that redirects (with a message), so it works without
JavaScript. The pages panel also posts with htmx: it then gets the panel back, re-rendered
in place, or a client redirect when the open page changes.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, Max, OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.timesince import timesince
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from builder.access import get_app_for_editor, get_page_for_editor
from builder.document import AppFileError, export_app, import_app
from builder.models import App, AppVersion, Page
from builder.publishing import publish
from builder.starters import STARTERS, create_from_starter
from workspaces import audit
from workspaces.access import get_membership, workspaces_of
from workspaces.audit import Action
from workspaces.models import Role

NAME_MAX = 100  # App.name and Page.name
MAX_APP_FILE_BYTES = 5 * 1024 * 1024
FIRST_PAGE_NAME = "Page 1"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


# Helpers


def _name(request: HttpRequest, noun: str, *, required: bool = True) -> str | None:
    """The posted ``name``, trimmed; None (with an error message) when it is not usable."""
    name = request.POST.get("name", "").strip()
    if not name and required:
        messages.error(request, f"Give the {noun} a name.")
        return None
    if len(name) > NAME_MAX:
        messages.error(request, f"The {noun} name can be at most {NAME_MAX} characters.")
        return None
    return name


def _referer_path(request: HttpRequest, prefixes: tuple[str, ...]) -> str | None:
    """The Referer as a path (and query), when it is on this site and under one of
    ``prefixes``; the host is dropped, so the redirect can only stay on the site."""
    referer = request.headers.get("referer", "")
    if not referer or not url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return None
    parts = urlsplit(referer)
    if not parts.path.startswith(prefixes) or "/../" in parts.path:
        return None
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _app_prefixes(app: App) -> tuple[str, ...]:
    """The paths that belong to ``app``: its editor and its published or preview pages."""
    return (reverse("editor:app", args=[app.slug]), reverse("viewer:app", args=[app.slug]))


def _back(request: HttpRequest, app: App, fallback: str, *, also: tuple[str, ...] = ()) -> str:
    return _referer_path(request, _app_prefixes(app) + also) or fallback


def _apps_url(app: App) -> str:
    return reverse("editor:apps", args=[app.workspace.slug])


def _canvas_url(app: App, page: Page) -> str:
    return reverse("editor:canvas", args=[app.slug, page.slug])


def _go(request: HtmxHttpRequest, url: str) -> HttpResponse:
    """A redirect that also works for an htmx request (a full page load there)."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _with_publish_state(apps: QuerySet[App]) -> QuerySet[App]:
    latest = AppVersion.objects.filter(app=OuterRef("pk")).order_by("-number")
    return apps.annotate(
        page_count=Count("pages", distinct=True),
        version_number=Subquery(latest.values("number")[:1]),
        published_at=Subquery(latest.values("published_at")[:1]),
    )


def _ago(when) -> str:
    if timezone.now() - when < timedelta(minutes=1):
        return "just now"
    return f"{timesince(when, depth=1)} ago"


# The apps list


@login_required
@require_GET
def app_list(request: HttpRequest, workspace: str) -> HttpResponse:
    """Every member's way in: editors see every app with its actions; viewers see the
    published apps only, each opening the published version."""
    membership = get_membership(request, workspace)
    can_edit = membership.allows(Role.EDITOR)
    apps = _with_publish_state(membership.workspace.apps.all())
    if not can_edit:
        apps = apps.filter(version_number__isnull=False)
    apps = list(apps)
    for app in apps:
        app.published_ago = _ago(app.published_at) if app.published_at else ""
    others = [w for w in workspaces_of(request.user) if w.pk != membership.workspace_id]
    context = {
        "workspace": membership.workspace,
        "membership": membership,
        "can_edit": can_edit,
        "apps": apps,
        "other_workspaces": others,
        "starters": STARTERS.values(),
    }
    return render(request, "editor/apps_list.html", context)


@login_required
@require_POST
def app_create(request: HttpRequest, workspace: str) -> HttpResponse:
    membership = get_membership(request, workspace, Role.EDITOR)
    name = _name(request, "app")
    if name is None:
        return redirect("editor:apps", workspace)
    key = request.POST.get("template") or "blank"
    starter = STARTERS.get(key)
    if starter is None:
        known = ", ".join(f"“{s.label}”" for s in STARTERS.values())
        messages.error(request, f"Template: no template “{key}” (choose {known}).")
        return redirect("editor:apps", workspace)
    with transaction.atomic():
        if starter.build is None:
            app = App.objects.create(workspace=membership.workspace, name=name)
            Page.objects.create(app=app, name=FIRST_PAGE_NAME, position=0)
        else:
            try:
                app = create_from_starter(membership.workspace, starter.key, name)
            except AppFileError as exc:
                # A template is checked like a file: say what failed, store nothing.
                messages.error(request, f"Could not create “{name}” from {starter.label}: {exc}")
                return redirect("editor:apps", workspace)
        audit.record(app.workspace, Action.CREATED, "app", app.name, request=request)
    if starter.build is None:
        messages.success(request, f"Created “{app.name}”.")
    else:
        messages.success(
            request,
            f"Created “{app.name}” from the {starter.label} template: publish it to try it, "
            "the mail goes to the dev mailbox.",
        )
    return redirect("editor:app", app.slug)


@login_required
@require_POST
def app_import(request: HttpRequest, workspace: str) -> HttpResponse:
    """An uploaded app file becomes a new app here; a bad file stores nothing."""
    membership = get_membership(request, workspace, Role.EDITOR)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose an app file (.json) to import.")
        return redirect("editor:apps", workspace)
    filename = upload.name
    if upload.size > MAX_APP_FILE_BYTES:
        limit = MAX_APP_FILE_BYTES // (1024 * 1024)
        messages.error(request, f"{filename} is larger than {limit} MB: not an app file.")
        return redirect("editor:apps", workspace)
    try:
        document = json.loads(upload.read())
    except json.JSONDecodeError as exc:
        messages.error(
            request,
            f"{filename} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
            "Nothing was imported.",
        )
        return redirect("editor:apps", workspace)
    except UnicodeDecodeError:
        messages.error(request, f"{filename} is not a text file. Nothing was imported.")
        return redirect("editor:apps", workspace)
    try:
        # An upload never reads the server's environment: a file naming a variable
        # (``"password": {"env": "SECRET_KEY"}``) could otherwise copy a server secret
        # into a datasource that sends it to a server of the uploader's choice.
        app = import_app(document, membership.workspace, environ={})
    except AppFileError as exc:
        messages.error(
            request, f"Could not import {filename}: {_explain(exc)} Nothing was imported."
        )
        return redirect("editor:apps", workspace)
    audit.record(
        app.workspace, Action.IMPORTED, "app", app.name, request=request, detail={"file": filename}
    )
    asked = str((document.get("app") or {}).get("name") or "").strip()
    if asked and app.name != asked:
        messages.success(
            request,
            f"Imported “{app.name}” from {filename} (this workspace already has an app "
            f"named “{asked}”).",
        )
    else:
        messages.success(request, f"Imported “{app.name}” from {filename}.")
    return redirect("editor:apps", workspace)


def _explain(exc: AppFileError) -> str:
    text = f"{exc.path}: {exc.message}."
    if exc.message.startswith("the environment variable"):
        text += (
            " An upload cannot read passwords from the server: create that datasource in "
            "this workspace first (the import then uses it), or import with "
            "manage.py import_app."
        )
    return text


# One app


@login_required
@require_GET
def app_open(request: HttpRequest, app: str) -> HttpResponse:
    """The editor's way into an app: the canvas of its first page. A viewer gets the
    published app instead of a 403."""
    found = App.objects.select_related("workspace").filter(slug=app).first()
    if found is None:
        raise Http404("No such app")
    membership = get_membership(request, found.workspace.slug)
    if not membership.allows(Role.EDITOR):
        return redirect("viewer:app", found.slug)
    page = found.pages.first()
    if page is None:
        # An app always has a page to edit (an imported file may have none).
        page = Page.objects.create(app=found, name=FIRST_PAGE_NAME, position=0)
    return redirect(_canvas_url(found, page))


@login_required
@require_POST
def app_publish(request: HttpRequest, app: str) -> HttpResponse:
    found = get_app_for_editor(request, app)
    version = publish(found, request.user)
    audit.record(
        found.workspace,
        Action.PUBLISHED,
        "app",
        found.name,
        request=request,
        detail={"version": version.number},
    )
    messages.success(request, f"Published version {version.number}: viewers now get it.")
    return redirect(_back(request, found, reverse("editor:app", args=[found.slug])))


@login_required
@require_http_methods(["GET", "POST"])
def app_public(request: HttpRequest, app: str) -> HttpResponse:
    """Whether the published app opens without signing in. Editors see it; only a
    workspace admin changes it. Takes effect at once, both ways."""
    found = get_app_for_editor(request, app)
    membership = get_membership(request, found.workspace.slug)
    if request.method == "POST":
        # Admins only: anyone else gets 403 (get_membership raises it).
        get_membership(request, found.workspace.slug, Role.ADMIN)
        value = request.POST.get("public", "")
        if value not in ("true", "false"):
            messages.error(request, "Public: choose on or off.")
            return redirect("editor:app_public", found.slug)
        found.public = value == "true"
        found.save(update_fields=["public", "updated_at"])
        if found.public:
            messages.success(request, f"“{found.name}” is public: anyone with its link can use it.")
        else:
            messages.success(request, f"“{found.name}” is private again: only members open it.")
        return redirect("editor:app_public", found.slug)
    context = {
        "app": found,
        "is_admin": membership.allows(Role.ADMIN),
        "version": found.versions.order_by("-number").first(),
        "section": "public",
    }
    return render(request, "editor/app_public.html", context)


@login_required
@require_POST
def app_rename(request: HttpRequest, app: str) -> HttpResponse:
    """Renames the app; its slug (and so every link to it) stays."""
    found = get_app_for_editor(request, app)
    name = _name(request, "app")
    if name is not None and name != found.name:
        old, found.name = found.name, name
        found.save(update_fields=["name", "updated_at"])
        audit.record(
            found.workspace, Action.CHANGED, "app", name, request=request, detail={"was": old}
        )
        messages.success(request, f"Renamed “{old}” to “{name}”.")
    return redirect(_back(request, found, _apps_url(found), also=(_apps_url(found),)))


@login_required
@require_POST
def app_duplicate(request: HttpRequest, app: str) -> HttpResponse:
    """A copy through the app file format: pages, widgets and queries; the datasources
    are the same ones (found by name in this workspace), so no secret is copied."""
    found = get_app_for_editor(request, app)
    document = export_app(found)
    document["app"] = {"name": f"Copy of {found.name}"[:NAME_MAX]}  # no slug: a fresh one
    try:
        copy = import_app(document, found.workspace, environ={})
    except AppFileError as exc:
        messages.error(request, f"Could not duplicate “{found.name}”: {_explain(exc)}")
    else:
        audit.record(
            found.workspace,
            Action.CREATED,
            "app",
            copy.name,
            request=request,
            detail={"copy_of": found.name},
        )
        messages.success(request, f"Duplicated “{found.name}” as “{copy.name}”.")
    return redirect(_apps_url(found))


@login_required
@require_http_methods(["GET", "POST"])
def app_delete(request: HttpRequest, app: str) -> HttpResponse:
    found = get_app_for_editor(request, app)
    if request.method == "POST":
        name, apps_url = found.name, _apps_url(found)
        with transaction.atomic():
            found.delete()
            audit.record(found.workspace, Action.DELETED, "app", name, request=request)
        messages.success(request, f"Deleted “{name}”.")
        return redirect(apps_url)
    context = {
        "app": found,
        "page_count": found.pages.count(),
        "version": found.versions.order_by("-number").first(),
    }
    return render(request, "editor/app_delete.html", context)


@login_required
@require_GET
def app_export(request: HttpRequest, app: str) -> HttpResponse:
    found = get_app_for_editor(request, app)
    content = json.dumps(export_app(found), indent=2, ensure_ascii=False) + "\n"
    response = HttpResponse(content, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, f"{found.slug}.json")
    return response


# Pages


def _panel(request: HtmxHttpRequest, app: App, fallback: str) -> HttpResponse:
    """After a page action: the panel itself for htmx, else back where the user was."""
    if request.htmx:
        current = app.pages.filter(slug=request.POST.get("current", "")).first()
        return render(request, "editor/pages_panel.html", {"app": app, "page": current})
    return redirect(_back(request, app, fallback))


def _free_page_name(app: App) -> str:
    names = set(app.pages.values_list("name", flat=True))
    n = len(names) + 1
    while f"Page {n}" in names:
        n += 1
    return f"Page {n}"


@login_required
@require_POST
def page_add(request: HtmxHttpRequest, app: str) -> HttpResponse:
    """Adds a page at the end (a blank name gives "Page N") and opens it."""
    found = get_app_for_editor(request, app)
    name = _name(request, "page", required=False)
    if name is None:
        return _panel(request, found, reverse("editor:app", args=[found.slug]))
    with transaction.atomic():
        last = found.pages.aggregate(n=Max("position"))["n"]
        page = Page.objects.create(
            app=found,
            name=name or _free_page_name(found),
            position=0 if last is None else last + 1,
        )
    audit.record(
        found.workspace, Action.CREATED, "page", f"{found.name} / {page.name}", request=request
    )
    messages.success(request, f"Added page “{page.name}”.")
    return _go(request, _canvas_url(found, page))


@login_required
@require_POST
def page_rename(request: HtmxHttpRequest, app: str, page: str) -> HttpResponse:
    """Renames a page; its slug stays, so links and navigate actions to it keep working."""
    found, target = get_page_for_editor(request, app, page)
    name = _name(request, "page")
    if name is not None and name != target.name:
        old, target.name = target.name, name
        target.save(update_fields=["name"])
        audit.record(
            found.workspace,
            Action.CHANGED,
            "page",
            f"{found.name} / {name}",
            request=request,
            detail={"was": old},
        )
        messages.success(request, f"Renamed page “{old}” to “{name}”.")
    return _panel(request, found, _canvas_url(found, target))


@login_required
@require_POST
def page_delete(request: HtmxHttpRequest, app: str, page: str) -> HttpResponse:
    found, target = get_page_for_editor(request, app, page)
    with transaction.atomic():
        # Locks the app, so that two deletes at once cannot remove its last page.
        App.objects.select_for_update().filter(pk=found.pk).first()
        if found.pages.count() <= 1:
            messages.error(
                request,
                f"“{target.name}” is the app's only page and cannot be deleted: "
                "add another page first.",
            )
            return _panel(request, found, _canvas_url(found, target))
        target.delete()
        _renumber(list(found.pages.all()))
        audit.record(
            found.workspace,
            Action.DELETED,
            "page",
            f"{found.name} / {target.name}",
            request=request,
        )
    messages.success(request, f"Deleted page “{target.name}”.")
    first = found.pages.first()
    deleted_path = _canvas_url(found, target)
    if request.htmx:
        if request.POST.get("current") == target.slug:
            return HttpResponseClientRedirect(_canvas_url(found, first))
        return _panel(request, found, "")
    back = _referer_path(request, _app_prefixes(found))
    if back is None or back.startswith(deleted_path):
        back = _canvas_url(found, first)
    return redirect(back)


@login_required
@require_POST
def page_reorder(request: HtmxHttpRequest, app: str) -> HttpResponse:
    """Either ``order`` (every page slug, in the new order) or ``page`` with
    ``move=up|down`` (one step, for the buttons that work without JavaScript)."""
    found = get_app_for_editor(request, app)
    pages = list(found.pages.all())
    order = request.POST.getlist("order")
    move = request.POST.get("move", "")
    fallback = reverse("editor:app", args=[found.slug])
    if order:
        by_slug = {p.slug: p for p in pages}
        if sorted(order) != sorted(by_slug):
            messages.error(request, "The pages changed meanwhile: reload and try again.")
            return _panel(request, found, fallback)
        pages = [by_slug[slug] for slug in order]
    elif move in ("up", "down"):
        slugs = [p.slug for p in pages]
        slug = request.POST.get("page", "")
        if slug not in slugs:
            raise Http404("No such page")
        i = slugs.index(slug)
        fallback = _canvas_url(found, pages[i])
        j = i - 1 if move == "up" else i + 1
        if 0 <= j < len(pages):
            pages[i], pages[j] = pages[j], pages[i]
    else:
        messages.error(request, "Say how to reorder the pages: an order, or move up or down.")
        return _panel(request, found, fallback)
    with transaction.atomic():
        _renumber(pages)
    return _panel(request, found, fallback)


def _renumber(pages: list[Page]) -> None:
    """Positions 0..n-1 in the given order, saving only the pages that moved."""
    moved = []
    for position, page in enumerate(pages):
        if page.position != position:
            page.position = position
            moved.append(page)
    Page.objects.bulk_update(moved, ["position"])
