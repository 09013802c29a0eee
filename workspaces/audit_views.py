"""The audit log page: a workspace's admins read and filter what happened in it."""

from __future__ import annotations

import datetime

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from workspaces.access import get_membership
from workspaces.audit import Action, AuditEvent
from workspaces.models import Role

PAGE_SIZE = 50


def _date(text: str) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return None


def filtered(events: QuerySet[AuditEvent], params) -> tuple[QuerySet[AuditEvent], dict]:
    """``events`` narrowed by the page's filters (who, action, what, from, to); a filter
    that cannot be read is ignored and reported, never an error page."""
    chosen: dict = {"problems": []}
    who = params.get("who", "").strip()
    if who:
        events = events.filter(actor_label__icontains=who)
        chosen["who"] = who
    action = params.get("action", "")
    if action in Action.values:
        events = events.filter(action=action)
        chosen["action"] = action
    what = params.get("what", "").strip()
    if what:
        events = events.filter(target_type=what)
        chosen["what"] = what
    for key, lookup in (("from", "created_at__date__gte"), ("to", "created_at__date__lte")):
        text = params.get(key, "").strip()
        if not text:
            continue
        day = _date(text)
        if day is None:
            chosen["problems"].append(f"“{text}” is not a date (YYYY-MM-DD): {key} ignored.")
            continue
        events = events.filter(**{lookup: day})
        chosen[key] = text
    return events, chosen


@login_required
@require_GET
def audit_log(request: HttpRequest, workspace: str) -> HttpResponse:
    membership = get_membership(request, workspace, Role.ADMIN)
    everything = AuditEvent.objects.filter(workspace=membership.workspace)
    events, chosen = filtered(everything, request.GET)
    page = Paginator(events.select_related("actor"), PAGE_SIZE).get_page(request.GET.get("page"))
    kinds = everything.order_by().values_list("target_type", flat=True).distinct()
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "workspace": membership.workspace,
        "page": page,
        "chosen": chosen,
        "actions": Action.choices,
        "kinds": sorted(kinds),
        "query": query.urlencode(),
    }
    return render(request, "workspaces/audit.html", context)
