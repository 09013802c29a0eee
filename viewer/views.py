"""The published app, as its users see it: the page, widget events, run polling."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from queries.models import QueryRun
from viewer.runtime import Output, PageRuntime, load_app, load_draft, run_download


def _runtime(request: HttpRequest, app: str, page: str | None, preview: bool) -> PageRuntime:
    found, document = load_draft(request, app) if preview else load_app(request, app)
    return PageRuntime(request, found, document, page, preview=preview)


@login_required
@require_GET
def page(request: HttpRequest, app: str, page: str | None = None, preview=False) -> HttpResponse:
    runtime = _runtime(request, app, page, preview)
    states = runtime.initial_states()
    context = {
        "app": runtime.app,
        "document": runtime.document,
        "runtime": runtime,
        "cells": runtime.render_page(states),
        "pollers": runtime.load_pollers(states),
    }
    return render(request, "viewer/page.html", context)


def _respond(out: Output) -> HttpResponse:
    if out.redirect:
        return HttpResponseClientRedirect(out.redirect)
    response = HttpResponse(out.html())
    for name, detail in out.triggers.items():
        trigger_client_event(response, name, detail)
    return response


@login_required
@require_POST
def event(request: HttpRequest, app: str, page: str, preview=False) -> HttpResponse:
    runtime = _runtime(request, app, page, preview)
    widget = request.POST.get("widget", "")
    name = request.POST.get("event", "")
    return _respond(runtime.handle_event(widget, name, request.POST, request.FILES))


@login_required
@require_POST
def poll(request: HttpRequest, app: str, page: str, run_id: int, preview=False) -> HttpResponse:
    runtime = _runtime(request, app, page, preview)
    path = request.POST.get("path", "")
    trigger = request.POST.get("trigger", "")
    return _respond(runtime.poll(run_id, path, trigger, request.POST, request.FILES))


@login_required
@require_POST
def widget(request: HttpRequest, app: str, page: str, name: str, preview=False) -> HttpResponse:
    runtime = _runtime(request, app, page, preview)
    return HttpResponse(runtime.refresh_widget(name, request.POST, request.FILES))


@login_required
@require_GET
def download(request: HttpRequest, app: str, run_id: int) -> HttpResponse:
    found, _ = load_app(request, app)
    run = get_object_or_404(QueryRun, pk=run_id, query__app=found, created_by=request.user)
    filename = request.GET.get("filename") or f"{run.query.name}.json"
    content, content_type = run_download(run, filename)
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
