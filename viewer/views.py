"""The published app, as its users see it: the page, widget events, run polling."""

from __future__ import annotations

import functools

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from builder.access import is_public
from queries.models import QueryRun, runs_of
from viewer.runtime import Output, PageRuntime, load_app, load_draft, run_download, visitor_id


def members_or_public(view):
    """Signed-in users go on (the app's own access check follows); anonymous visitors
    only to a public app's published pages, never its preview, else to sign in."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, app: str, *args, **kwargs):
        if not request.user.is_authenticated and (kwargs.get("preview") or not is_public(app)):
            return redirect_to_login(request.get_full_path())
        return view(request, app, *args, **kwargs)

    return wrapper


def _runtime(request: HttpRequest, app: str, page: str | None, preview: bool) -> PageRuntime:
    if preview:
        found, document = load_draft(request, app)
        return PageRuntime(request, found, document, page, preview=True)
    found, version = load_app(request, app)
    return PageRuntime(request, found, version.document, page, plans=version.plans)


@members_or_public
@require_GET
def page(request: HttpRequest, app: str, page: str | None = None, preview=False) -> HttpResponse:
    runtime = _runtime(request, app, page, preview)
    states = runtime.initial_states()
    context = {
        "app": runtime.app,
        "document": runtime.document,
        "runtime": runtime,
        "cells": runtime.render_page(states),
        "load_url": runtime.load_url(),
        "merges": runtime.merge_panels(),
    }
    return render(request, "viewer/page.html", context)


@members_or_public
@require_POST
def load(request: HttpRequest, app: str, page: str, preview=False) -> HttpResponse:
    """Starts the page's "run on page load" queries: POSTed by the page once it loads."""
    return _respond(_runtime(request, app, page, preview).load_runs())


def _respond(out: Output) -> HttpResponse:
    if out.redirect:
        return HttpResponseClientRedirect(out.redirect)
    response = HttpResponse(out.html(), status=out.status)
    for name, detail in out.triggers.items():
        trigger_client_event(response, name, detail)
    return response


@members_or_public
@require_POST
def event(request: HttpRequest, app: str, page: str, preview=False) -> HttpResponse:
    runtime = _runtime(request, app, page, preview)
    widget = request.POST.get("widget", "")
    name = request.POST.get("event", "")
    return _respond(runtime.handle_event(widget, name, request.POST, request.FILES))


@members_or_public
@require_POST
def poll(request: HttpRequest, app: str, page: str, run_id: int, preview=False) -> HttpResponse:
    runtime = _runtime(request, app, page, preview)
    path = request.POST.get("path", "")
    trigger = request.POST.get("trigger", "")
    return _respond(runtime.poll(run_id, path, trigger, request.POST, request.FILES))


@members_or_public
@require_POST
def widget(request: HttpRequest, app: str, page: str, name: str, preview=False) -> HttpResponse:
    runtime = _runtime(request, app, page, preview)
    return HttpResponse(runtime.refresh_widget(name, request.POST, request.FILES))


@members_or_public
@require_GET
def download(request: HttpRequest, app: str, run_id: int) -> HttpResponse:
    found, _ = load_app(request, app)
    mine = runs_of(request.user, visitor_id(request))
    run = get_object_or_404(QueryRun.objects.filter(mine), pk=run_id, query__app=found)
    filename = request.GET.get("filename") or f"{run.query.name}.json"
    content, content_type = run_download(run, filename)
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@members_or_public
@require_POST
def merge_count(request: HttpRequest, app: str, page: str, preview=False) -> HttpResponse:
    """How many emails the event (``widget``, ``event``) would send as a merge now, for
    the confirmation dialog (viewer.js): JSON ``count`` and ``message``, or ``error``."""
    runtime = _runtime(request, app, page, preview)
    widget = request.POST.get("widget", "")
    event = request.POST.get("event", "")
    return JsonResponse(runtime.merge_confirmation(widget, event, request.POST, request.FILES))


@members_or_public
@require_POST
def merge(request: HttpRequest, app: str, page: str, run_id: int, preview=False) -> HttpResponse:
    """A merge's progress panel, asked for again by itself while the merge goes on."""
    return _respond(_runtime(request, app, page, preview).merge_refresh(run_id))


@members_or_public
@require_POST
def merge_stop(
    request: HttpRequest, app: str, page: str, run_id: int, preview=False
) -> HttpResponse:
    return _respond(_runtime(request, app, page, preview).merge_act(run_id, "stop"))


@members_or_public
@require_POST
def merge_resume(
    request: HttpRequest, app: str, page: str, run_id: int, preview=False
) -> HttpResponse:
    return _respond(_runtime(request, app, page, preview).merge_act(run_id, "resume"))


@members_or_public
@require_POST
def merge_retry(
    request: HttpRequest, app: str, page: str, run_id: int, row_id: int, preview=False
) -> HttpResponse:
    return _respond(_runtime(request, app, page, preview).merge_act(run_id, "retry", row_id))
